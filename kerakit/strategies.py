"""Strategy names, devices, cluster roles and dtype policies (see `kerakit.distribute`).

On the core floor: `build_model(strategy=...)` and the fit engines need these,
so they live below both; `kerakit.distribute` publishes them with its launcher.

`tf.distribute` strategies are TensorFlow's by nature and are refused on other
backends; on JAX, `keras.distribution` (`use_data_parallel`) takes their place.
"""

import atexit
import contextlib
import json
import os
import shutil
import tempfile

from kerakit.backend import name as backend_name
from kerakit.backend import require_tensorflow
from kerakit.checks import check_count
from kerakit.errors import ConfigError, unknown_name

# Strategies -------------------------------------------------------------------


def _default_strategy():
    import tensorflow as tf

    return tf.distribute.get_strategy()


def _mirrored_strategy():
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    # Without a GPU, MirroredStrategy() uses CPU:0 only; name every logical
    # CPU device so `split_cpu(n)` gives n replicas.
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def _multiworker_strategy():
    import tensorflow as tf

    read_tf_config(required=True)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        raise ConfigError(
            f"MultiWorkerMirroredStrategy could not start: {error}. It must be created "
            f"before TensorFlow runs anything else in the process: call "
            f"kerakit.get_strategy('multiworker') (or build_model(..., strategy='multiworker')) "
            f"at the top of the script."
        ) from None


# name → (factory, description). Instances are cached per name: a model and
# the `fit` that trains it must share one strategy object, and TensorFlow
# allows one MultiWorkerMirroredStrategy per process.
STRATEGIES = {
    "default": (_default_strategy, "no distribution: the current device"),
    "mirrored": (_mirrored_strategy, "all local GPUs (every logical CPU device without a GPU)"),
    "multiworker": (_multiworker_strategy, "several machines, from the TF_CONFIG variable"),
}
_INSTANCES = {}
_DEFAULT = [None]  # set_default_strategy's choice


def set_default_strategy(strategy):
    """Makes `build_model` use `strategy` whenever its `strategy=` is left out.

    For whole programs (and `kerakit run NAME --strategy mirrored`): call it
    once at the top, and every model kerakit builds afterwards is created in
    that strategy's scope; `fit` follows each model's own strategy. Under
    "multiworker" call it before any other TensorFlow work.

    Args:
        strategy: a name or `tf.distribute.Strategy` (see `get_strategy`), or
            None to go back to no strategy.

    Returns:
        The strategy object, or None.

    Example:

    ```python
    kerakit.set_default_strategy("mirrored")
    model = kerakit.build_model(spec, input_shape=(64,))    # built under MirroredStrategy
    kerakit.fit(model, x, y, batch_size=64)                 # distributed: follows the model
    ```
    """
    _DEFAULT[0] = None if strategy is None else get_strategy(strategy)
    return _DEFAULT[0]


def use_strategy_for_run(strategy, runs_dir=None, quiet=False):
    """Sets up `kerakit run ... --strategy NAME`; returns `(runs_dir, quiet)` for this process.

    Makes `strategy` the default for every model the recipe builds;
    `"data_parallel"` sets `keras.distribution.DataParallel` on JAX instead
    (see `use_data_parallel`). In a multi-worker run every worker runs the whole recipe in step, but only the
    chief keeps a run directory: the others write theirs to a temporary folder
    removed at exit, and print nothing.
    """
    if strategy == DATA_PARALLEL:
        use_data_parallel()
        strategy = None
    else:
        strategy = set_default_strategy(strategy)
    if is_chief(strategy):
        return runs_dir, quiet
    folder = tempfile.mkdtemp(prefix="kerakit-worker-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder, True


DATA_PARALLEL = "data_parallel"  # `--strategy` name for keras.distribution on JAX
_JAX_ALTERNATIVE = (
    "On JAX, distribute with keras.distribution instead: "
    "keras.distribution.set_distribution(keras.distribution.DataParallel()) (or "
    "kerakit.distribute.use_data_parallel()) before building the model, or "
    f"`kerakit run NAME --strategy {DATA_PARALLEL}`; kerakit.fit then shards the batches."
)


def refuse_tf_distribute_off_tensorflow(what):
    """Refuses a `tf.distribute` strategy on JAX or PyTorch, naming `keras.distribution`."""
    require_tensorflow(f"{what}: tf.distribute strategies", _JAX_ALTERNATIVE)


def use_data_parallel():
    """Makes every `kerakit.fit` of this program data-parallel over all JAX devices.

    Sets `keras.distribution.DataParallel` over every device (of every
    process) as Keras's global distribution: models built afterwards get
    replicated variables, and the `jax` engine shards each epoch's batches
    over the mesh's batch axis. In a multi-process run (the
    `KERAS_DISTRIBUTION_NUM_PROCESSES` variable above 1, as
    `python -m kerakit.distribute --workers N` sets it), it first calls
    `keras.distribution.initialize()`, so call it before any other JAX work.
    Each process then feeds `kerakit.fit` its own rows.

    Returns:
        The `keras.distribution.DataParallel` distribution.

    Example:

    ```python
    kerakit.distribute.use_data_parallel()           # KERAS_BACKEND=jax
    model = kerakit.build_model(spec, input_shape=(64,))
    kerakit.fit(model, x, y, batch_size=256)         # 256 rows per step, split over the devices
    ```
    """
    if backend_name() != "jax":
        raise ConfigError(
            f"Data-parallel training with keras.distribution is kerakit's JAX road; Keras is "
            f"running on {backend_name()!r}. Set KERAS_BACKEND=jax, or on TensorFlow use "
            f"strategy='mirrored' (one machine) or 'multiworker'. Received: "
            f"strategy={DATA_PARALLEL!r}"
        )
    import jax
    import keras

    processes = int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES") or 1)
    if processes > 1 and not jax.distributed.is_initialized():
        keras.distribution.initialize()
    distribution = keras.distribution.DataParallel()
    keras.distribution.set_distribution(distribution)
    return distribution


def model_strategy(model):
    """Returns the non-default `tf.distribute.Strategy` a model was built under, or None."""
    import tensorflow as tf

    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None or (not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy()):
        return None
    return strategy


def get_strategy(identifier="default"):
    """Returns a `tf.distribute.Strategy` for a name, or the strategy given.

    Names: "default" (no distribution), "mirrored" (synchronous data
    parallelism over all local GPUs, or over every logical CPU device when
    there is no GPU — see `split_cpu`), "multiworker"
    (`tf.distribute.MultiWorkerMirroredStrategy` over the cluster described
    by the `TF_CONFIG` environment variable). The same name returns the same
    object, so a model built with `strategy="mirrored"` and the `fit` that
    trains it agree.

    Args:
        identifier: a name above, a `tf.distribute.Strategy`, or None
            (same as "default"). Defaults to "default".

    Example:

    ```python
    strategy = kerakit.get_strategy("mirrored")
    strategy.num_replicas_in_sync   # number of local GPUs, or CPU devices
    ```
    """
    refuse_tf_distribute_off_tensorflow(f"strategy={identifier!r}")
    if identifier is None:
        identifier = "default"
    if not isinstance(identifier, str):
        import tensorflow as tf

        if isinstance(identifier, tf.distribute.Strategy):
            return identifier
        raise ConfigError(
            f"`strategy` must be a tf.distribute.Strategy or one of "
            f"{', '.join(repr(k) for k in STRATEGIES)}. Received: strategy={identifier!r}"
        )
    name = identifier.lower()
    if name not in STRATEGIES:
        raise unknown_name("strategy", identifier, STRATEGIES)
    if name not in _INSTANCES:
        _INSTANCES[name] = STRATEGIES[name][0]()
    return _INSTANCES[name]


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices (for `"mirrored"` on CPU).

    Lets a machine without a GPU run synchronous data-parallel training with
    several replicas — the same code path as several GPUs, for tests and
    rehearsals. TensorFlow fixes its devices when it first uses them, so call
    this at the start of the program.

    Args:
        num_devices: number of logical CPU devices, at least 1.

    Returns:
        The names of the logical CPU devices.

    Example:

    ```python
    kerakit.split_cpu(2)
    # ['/device:CPU:0', '/device:CPU:1']
    ```
    """
    num_devices = check_count("num_devices", num_devices)
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    except RuntimeError:
        current = len(tf.config.list_logical_devices("CPU"))
        if current == num_devices:
            return [d.name for d in tf.config.list_logical_devices("CPU")]
        raise ConfigError(
            f"TensorFlow has already set up its devices ({current} logical CPU device(s)), "
            f"so the CPU cannot be split into {num_devices} now. Call kerakit.split_cpu("
            f"{num_devices}) at the start of the program, before any model or tensor is created."
        ) from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def check_batch_size(batch_size, strategy):
    """Checks that the global `batch_size` splits evenly over the strategy's replicas.

    Returns the per-replica batch size.
    """
    replicas = strategy.num_replicas_in_sync
    batch_size = check_count("batch_size", batch_size)
    if batch_size % replicas:
        lower = max(replicas, batch_size - batch_size % replicas)
        raise ConfigError(
            f"Under a distribution strategy `batch_size` is the global batch, split evenly "
            f"over the {replicas} replicas; {batch_size} does not split. Use a multiple of "
            f"{replicas}, e.g. batch_size={lower} or {lower + replicas}."
        )
    return batch_size // replicas


# Multi-worker cluster ------------------------------------------------------------


def read_tf_config(required=False):
    """Returns the parsed `TF_CONFIG` environment variable, or None when unset.

    Checks that it names a cluster with workers and this process's task.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        if required:
            raise ConfigError(
                "strategy='multiworker' needs the TF_CONFIG environment variable, which "
                "describes the cluster and this process's place in it, e.g. "
                'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\'. To try it on one machine: '
                "python -m kerakit.distribute --workers 2 your_script.py"
            )
        return None
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task_type, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"TF_CONFIG must be JSON with 'cluster' (containing a 'worker' list of host:port) "
            f"and 'task' ({{'type': 'worker', 'index': i}}); reading it failed with "
            f"{type(error).__name__}: {error}. Received: TF_CONFIG={raw[:200]!r}"
        ) from None
    members = config["cluster"].get(task_type, [])
    if not isinstance(workers, list) or not workers or not 0 <= index < len(members):
        raise ConfigError(
            f"TF_CONFIG's task ({task_type!r}, index {index}) is not in its cluster "
            f"{config['cluster']!r}. Each process needs its own index into the list."
        )
    return config


def is_chief(strategy=None):
    """True in the process that should write files: the chief of a multi-worker run.

    The chief is the "chief" task when the cluster has one, else worker 0.
    The strategy's cluster resolver decides when it has one; otherwise the
    `TF_CONFIG` environment variable; otherwise (JAX) process 0 of
    `KERAS_DISTRIBUTION_PROCESS_ID`; without any, every process is the chief.

    Example:

    >>> kerakit.is_chief()   # no TF_CONFIG: a single process is its own chief
    True
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type is not None:
        task_type, task_id = resolver.task_type, resolver.task_id
        has_chief = bool(resolver.cluster_spec().as_dict().get("chief"))
    else:
        config = read_tf_config()
        if config is None:
            # A JAX process of a multi-process run (keras.distribution).
            return os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0") == "0"
        task_type, task_id = config["task"]["type"], int(config["task"]["index"])
        has_chief = bool(config["cluster"].get("chief"))
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and not has_chief


def save_on_chief(model, path, strategy=None):
    """Saves `model` once per cluster: on the chief only, atomically.

    Every worker of a multi-worker run holds the same weights; writing from
    all of them to a shared path would race. The file is written to a
    temporary name beside `path`, then moved into place.

    Args:
        model: the trained `keras.Model`.
        path: where to write, ending in ".keras".
        strategy: the run's strategy; defaults to the one the model was
            built under.

    Returns:
        `path` on the chief, None on the other workers.

    Example:

    ```python
    kerakit.save_on_chief(model, "runs/model.keras")
    ```
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ConfigError(f"`path` must end in '.keras' (Keras's model format). Received: path={path!r}")
    strategy = strategy if strategy is not None else getattr(model, "distribute_strategy", None)
    if not is_chief(strategy):
        return None
    from kerakit.atomic import atomic_path

    with atomic_path(path) as temporary:
        model.save(temporary)
    return path


def is_multiworker(strategy):
    """True for a `tf.distribute.MultiWorkerMirroredStrategy`."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


# Mixed precision ------------------------------------------------------------------

# Keras dtype policy → when to use it.
PRECISION_POLICIES = {
    "float32": "full precision (the default)",
    "mixed_float16": "float16 compute, float32 weights; NVIDIA GPUs with compute capability 7.0+",
    "mixed_bfloat16": "bfloat16 compute, float32 weights; TPUs and recent CPUs/GPUs",
}


@contextlib.contextmanager
def precision_policy(policy):
    """Sets Keras's global dtype policy inside the block, restoring it after.

    Layers created in the block keep the policy; a model compiled under
    "mixed_float16" gets a loss-scaled optimizer from Keras. Keep the output
    layer in float32 (`build_model` does) so the loss is computed in float32.
    """
    if policy is None:
        yield
        return
    if policy not in PRECISION_POLICIES:
        raise unknown_name("mixed_precision policy", policy, PRECISION_POLICIES)
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@contextlib.contextmanager
def model_scope(strategy=None, mixed_precision=None):
    """Scope for creating and compiling a model: the strategy's scope and the dtype policy.

    `strategy=None` means the one `set_default_strategy` chose, if any.
    """
    if strategy not in (None, "default") and backend_name() != "tensorflow":
        refuse_tf_distribute_off_tensorflow(f"build_model(strategy={strategy!r})")
    with precision_policy(mixed_precision):
        strategy = strategy if strategy is not None else _DEFAULT[0]
        if strategy is None or (strategy == "default" and backend_name() != "tensorflow"):
            yield None
            return
        strategy = get_strategy(strategy)
        with strategy.scope():
            yield strategy
