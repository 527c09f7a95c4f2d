"""Training engines: `kerakit.fit` picks one, once, from the backend, the strategy and the data.

- `tensorflow`: a cached `tf.data` pipeline (reshuffled every epoch) and
  several steps per call into TensorFlow (`steps_per_execution`).
- `jax`: the arrays are put on the device once and each epoch is one jitted
  call: rows shuffled on the device, `lax.scan` over Keras's own stateless
  `train_step`, validation on the device too. Callbacks run at epoch
  boundaries with the same logs and `History` as `model.fit`. Under
  `keras.distribution` (DataParallel, ModelParallel, several processes) the
  batches are sharded over the mesh's batch axis (`kerakit.engines.placement`).
- `torch`: device-resident tensors, shuffled on the device, one Keras
  `train_step` per batch without Keras's per-batch data adapter.
- `keras`: Keras's own `model.fit` on the arrays (any backend); the fallback
  when data does not fit on the device or a callback needs every batch.
- `distributed`: a `tf.distribute` strategy (TensorFlow only).

Every engine receives validated NumPy arrays (`TrainingData`) and the same
options (`FitOptions`); none of them validates again.
"""

import dataclasses
import importlib
import warnings

from kerakit.backend import is_dataset, require_tensorflow
from kerakit.backend import name as backend
from kerakit.engines.placement import pad_to_devices, predict_on_this_process
from kerakit.errors import ConfigError, unknown_name
from kerakit.strategies import refuse_tf_distribute_off_tensorflow

__all__ = ["BACKEND_ENGINES", "ENGINES", "FitOptions", "TrainingData", "choose", "get", "is_dataset",
           "pad_to_devices", "predict_on_this_process", "say_once"]

# engine name → module with `fit(model, data, options)`
ENGINES = {
    "tensorflow": "kerakit.engines.tensorflow",
    "jax": "kerakit.engines.jax",
    "torch": "kerakit.engines.torch",
    "keras": "kerakit.engines.keras_fit",
    "distributed": "kerakit.engines.distributed",
}
# The engine "auto" picks on each backend when no strategy is involved.
BACKEND_ENGINES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


@dataclasses.dataclass
class TrainingData:
    """Validated training arrays, and the validation arrays (or a tf.data.Dataset)."""

    x: object
    y: object
    sample_weight: object = None
    validation: tuple | None = None  # (x, y) or (x, y, sample_weight), or a tf.data.Dataset

    @property
    def rows(self):
        from kerakit.checks import rows

        return rows(self.x)


@dataclasses.dataclass
class FitOptions:
    """The options every engine honours, with `model.fit`'s meaning."""

    batch_size: int = 32
    epochs: int = 1
    initial_epoch: int = 0
    verbose: int = 1
    callbacks: list = dataclasses.field(default_factory=list)
    shuffle: bool = True
    seed: int | None = None
    steps_per_execution: object = "auto"
    strategy: object = None


def choose(model, x=None, strategy=None, engine="auto"):
    """Returns the name of the engine that trains `model` on `x`.

    `engine="auto"` picks by backend; a strategy (given, or the one the model
    was built under) means "distributed". A name is checked and used as given.
    """
    name = backend()
    if engine != "auto":
        if engine not in ENGINES:
            raise unknown_name("engine", engine, list(ENGINES) + ["auto"])
        if engine in ("tensorflow", "distributed"):
            require_tensorflow(f"engine={engine!r}", "Use engine='auto' or 'keras'.")
        if engine in ("jax", "torch") and engine != name:
            raise ConfigError(
                f"engine={engine!r} needs KERAS_BACKEND={engine}; Keras is running on {name!r}. "
                f"Use engine='auto'."
            )
        return engine
    if strategy is not None:
        refuse_tf_distribute_off_tensorflow(f"fit(strategy={strategy!r})")
    if name == "tensorflow":
        from kerakit.strategies import model_strategy

        if strategy is not None or model_strategy(model) is not None:
            return "distributed"
    if is_dataset(x) and name != "tensorflow":
        return "keras"
    return BACKEND_ENGINES.get(name, "keras")


def get(name):
    """The engine module for a name from `ENGINES`."""
    return importlib.import_module(ENGINES[name])


_SAID = set()


def say_once(message):
    """Warns once per process (engine fallbacks)."""
    if message not in _SAID:
        _SAID.add(message)
        warnings.warn(message, stacklevel=3)
