"""`kerakit env`: the Keras backend, versions and devices, for bug reports."""

import importlib.metadata
import json
import platform
import sys


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _devices(backend):
    """The devices the backend in use trains on (only that backend is imported)."""
    if backend == "tensorflow":
        import tensorflow as tf

        return [{"name": d.name, "type": d.device_type} for d in tf.config.list_logical_devices()]
    if backend == "jax":
        import jax

        return [{"name": str(d), "type": d.platform.upper()} for d in jax.devices()]
    if backend == "torch":
        import torch

        names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
        return [{"name": name, "type": name.split(":")[0].upper()} for name in names]
    return []


def collect():
    """Returns the Keras backend, versions of Python and the stack, and the backend's devices."""
    import keras

    from kerakit import __version__

    backend = keras.backend.backend()
    devices = _devices(backend)
    return {
        "kerakit": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "keras_backend": backend,
        "keras": keras.__version__,
        # Installed versions, read without importing them (TensorFlow alone takes seconds).
        "tensorflow": _version("tensorflow"),
        "jax": _version("jax"),
        "torch": _version("torch"),
        "keras_tuner": _version("keras-tuner"),
        "numpy": _version("numpy"),
        "scikit_learn": _version("scikit-learn"),
        "devices": devices,
        "gpus": sum(d["type"] in ("GPU", "CUDA") for d in devices),
    }


def run(args):
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "devices":
            value = ", ".join(f"{d['name']} ({d['type']})" for d in value)
        print(f"{key:14s} {value if value is not None else 'not installed'}")
    return 0
