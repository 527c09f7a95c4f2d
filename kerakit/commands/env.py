"""`kerakit env`: versions and devices, for bug reports."""

import json
import platform
import sys


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def collect():
    """Returns versions of Python and the stack, and the devices TensorFlow sees."""
    import keras
    import keras_tuner
    import numpy
    import sklearn
    import tensorflow as tf

    from kerakit import __version__

    devices = [
        {"name": d.name, "type": d.device_type} for d in tf.config.list_logical_devices()
    ]
    return {
        "kerakit": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "keras_tuner": keras_tuner.__version__,
        "numpy": numpy.__version__,
        "scikit_learn": sklearn.__version__,
        "devices": devices,
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }


def run(args):
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "devices":
            value = ", ".join(f"{d['name']} ({d['type']})" for d in value)
        print(f"{key:14s} {value}")
    return 0
