"""Distributed training: `tf.distribute` strategies, mixed precision, multi-host.

kerakit scales out on TensorFlow's own engines and adds only the decisions:

- `get_strategy("mirrored")` — every local GPU (or every logical CPU device
  when there is no GPU); `"multiworker"` — `tf.distribute.MultiWorkerMirroredStrategy`
  across machines, configured from the `TF_CONFIG` environment variable;
  `"default"` — no distribution. A strategy object is used as given.
- `build_model(..., strategy=...)` creates and compiles the model inside the
  strategy's scope; `fit(..., strategy=...)` feeds a distributed pipeline
  with an explicit *global* batch size (split evenly over the replicas).
- Under `MultiWorkerMirroredStrategy`, Keras 3's `Model.fit` fails
  (keras-team/keras#20585: "Attempt to convert a value (PerReplica ...)",
  raised by the symbolic build that reduces the first batch as one nested
  structure). kerakit trains there with a strategy-aware loop on the same
  engine: `strategy.run(model.train_step)` — Keras's own step, whose
  optimizer all-reduces the gradients — over
  `strategy.distribute_datasets_from_function`, with the model's own metrics
  (read across workers), Keras callbacks and a `History`.
- `mixed_precision="mixed_float16"` builds the model under that Keras dtype
  policy (float32 output layer, loss-scaled optimizer), for GPUs.
- `launch_local` / `python -m kerakit.distribute` start N workers of one
  command on 127.0.0.1 with `TF_CONFIG` set — a multi-host run on one machine.
- `set_default_strategy` makes every `build_model` of a program (or of
  `kerakit run NAME --strategy ...`) use one strategy.

This module imports TensorFlow only inside functions.
"""

import argparse
import atexit
import contextlib
import contextvars
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from kerakit.errors import ConfigError, DataError, WorkerTimeoutError, unknown_name

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
# True while `fit` below hands a distributed model to `training.fit`, so that
# `training.fit` does not hand it back.
_DISPATCHED = contextvars.ContextVar("kerakit_distribute_dispatched", default=False)


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

    Makes `strategy` the default for every model the recipe builds. In a
    multi-worker run every worker runs the whole recipe in step, but only the
    chief keeps a run directory: the others write theirs to a temporary folder
    removed at exit, and print nothing.
    """
    strategy = set_default_strategy(strategy)
    if is_chief(strategy):
        return runs_dir, quiet
    folder = tempfile.mkdtemp(prefix="kerakit-worker-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder, True


def model_strategy(model):
    """Returns the non-default `tf.distribute.Strategy` a model was built under, or None."""
    if _DISPATCHED.get():
        return None
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

    >>> strategy = kerakit.get_strategy("mirrored")
    >>> strategy.num_replicas_in_sync   # number of local GPUs, or CPU devices
    """
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

    >>> kerakit.split_cpu(2)
    ['/device:CPU:0', '/device:CPU:1']
    """
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ConfigError(f"`num_devices` must be an integer >= 1. Received: num_devices={num_devices!r}")
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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
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
    `TF_CONFIG` environment variable; without either, every process is the
    chief.

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
            return True
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
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".keras", dir=folder)
    os.close(handle)
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _is_multiworker(strategy):
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
    with precision_policy(mixed_precision):
        strategy = strategy if strategy is not None else _DEFAULT[0]
        if strategy is None:
            yield None
            return
        strategy = get_strategy(strategy)
        with strategy.scope():
            yield strategy


# fit under a strategy ----------------------------------------------------------


def _check_model_strategy(model, strategy):
    built_under = getattr(model, "distribute_strategy", None)
    if built_under is strategy:
        return
    raise ConfigError(
        f"The model's variables were created under {type(built_under).__name__}, but fit was "
        f"asked to train with {type(strategy).__name__}; variables cannot move between "
        f"strategies. Build the model with the same strategy: build_model(..., strategy=...) "
        f"or inside `with strategy.scope():`."
    )


def fit(model, x, y=None, *, strategy, batch_size=32, **fit_options):
    """Trains `model` with a distribution strategy; called by `kerakit.fit(strategy=...)`.

    `batch_size` is the global batch: each step consumes `batch_size` examples
    in total, `batch_size / num_replicas_in_sync` on each replica. The model
    must have been built under the same strategy.

    Under "mirrored" (or any single-machine strategy) this is Keras's
    `Model.fit` on kerakit's pipeline, which Keras distributes over the
    replicas; one step per call into TensorFlow, because Keras 3's
    multi-step loop does not run under MirroredStrategy
    (keras-team/keras#19246). Under "multiworker" it is a strategy-aware loop
    around Keras's own `train_step` (see the module docstring).

    Example:

    ```python
    kerakit.split_cpu(2)                      # or run on a machine with 2 GPUs
    model = kerakit.build_model(spec, input_shape=(64,), strategy="mirrored")
    history = kerakit.fit(model, x, y, epochs=5, batch_size=64, strategy="mirrored")
    ```
    """
    from kerakit import training

    strategy = get_strategy(strategy)
    _check_model_strategy(model, strategy)
    check_batch_size(batch_size, strategy)
    if not _is_multiworker(strategy):
        if strategy.num_replicas_in_sync > 1:
            fit_options["steps_per_execution"] = 1
        token = _DISPATCHED.set(True)
        try:
            return training.fit(model, x, y, batch_size=batch_size, **fit_options)
        finally:
            _DISPATCHED.reset(token)
    return _fit_multiworker(model, x, y, strategy=strategy, batch_size=batch_size, **fit_options)


def _fit_multiworker(
    model,
    x,
    y,
    *,
    strategy,
    batch_size,
    epochs=1,
    verbose="auto",
    callbacks=None,
    validation_split=0.0,
    validation_data=None,
    shuffle=True,
    class_weight=None,
    sample_weight=None,
    seed=None,
    steps_per_execution="auto",
    spec=None,
):
    import keras
    import numpy as np
    import tensorflow as tf

    from kerakit import training
    from kerakit.builders import spec_of

    if isinstance(x, tf.data.Dataset):
        raise DataError(
            "Under strategy='multiworker' kerakit.fit takes arrays (each worker loads the "
            "same data and reads its own shard). Received a tf.data.Dataset; pass NumPy "
            "arrays or a DataFrame."
        )
    if y is None:
        raise DataError("`y` is required when `x` is not a tf.data.Dataset.")
    if tf.distribute.has_strategy():
        raise ConfigError(
            "Call kerakit.fit outside `with strategy.scope():` under strategy='multiworker'; "
            "the model already carries its strategy."
        )
    spec = spec or spec_of(model)
    if seed is not None:
        training.set_seed(seed)
    x, y = training.prepare(model, x, y, spec)
    weights = None
    if class_weight is not None:
        weights = training.class_weights(spec, y, class_weight)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
        if len(sample_weight) != len(y):
            raise DataError(f"`sample_weight` has {len(sample_weight)} rows; the labels have {len(y)}.")
        weights = sample_weight if weights is None else weights * sample_weight
    if validation_split and validation_data is None:
        (x, y, weights), (xv, yv, _) = training._split([x, y, weights], validation_split)
        validation_data = (xv, yv)
    training._check_monitors(callbacks, validation_data is not None)
    evaluator = _Validator(model, validation_data, spec) if validation_data is not None else None

    rows = training._rows(x)
    if rows < batch_size:
        raise DataError(
            f"{rows} training rows are fewer than one global batch ({batch_size}); every "
            f"worker needs data for every step. Pass a smaller batch_size."
        )
    parts = tuple(p for p in (x, y, weights) if p is not None)

    def dataset_fn(context):
        # Each worker reads its own shard of the rows; repeating keeps all
        # workers stepping in lockstep for exactly `steps` steps per epoch.
        ds = tf.data.Dataset.from_tensor_slices(parts)
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id).cache()
        if shuffle:
            ds = ds.shuffle(math.ceil(rows / context.num_input_pipelines), seed=seed,
                            reshuffle_each_iteration=True)
        per_replica = context.get_per_replica_batch_size(batch_size)
        return ds.repeat().batch(per_replica).prefetch(tf.data.AUTOTUNE)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn, options))
    steps = math.ceil(rows / batch_size)
    if steps_per_execution == "auto":
        steps_per_execution = max(1, min(steps, training.MAX_STEPS_PER_EXECUTION))
    steps_per_execution = int(steps_per_execution)

    with strategy.scope():
        # Optimizer slots must exist before the step is traced: variables
        # cannot be created inside `strategy.run`.
        model.optimizer.build(model.trainable_variables)

    @tf.function
    def train_function(iterator, num_steps):
        for _ in tf.range(num_steps):
            strategy.run(model.train_step, args=(next(iterator),))
        # Metric variables are sync-on-read: reading them here sums over
        # every replica of every worker, so all workers see the same logs
        # (and callbacks such as EarlyStopping decide the same way).
        return model.get_metrics_result()

    chief = is_chief(strategy)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=chief and verbose != 0,
        verbose=verbose if chief else 0,
        epochs=epochs,
        steps=steps,
        model=model,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    logs = epoch_logs = {}
    for epoch in range(epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        step = 0
        while step < steps:
            chunk = min(steps_per_execution, steps - step)
            callback_list.on_train_batch_begin(step)
            logs = {k: float(v) for k, v in train_function(iterator, tf.constant(chunk)).items()}
            step += chunk
            callback_list.on_train_batch_end(step - 1, logs)
        epoch_logs = dict(logs)
        if evaluator is not None:
            epoch_logs.update(evaluator.logs())
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs=epoch_logs)
    return model.history


class _Validator:
    """Validation metrics under multi-worker training, the same on every worker.

    Keras's `evaluate` fails under MultiWorkerMirroredStrategy for the same
    reason as `fit`. Every worker holds identical weights, so each evaluates
    the whole validation set with a plain (non-distributed) Keras model that
    shares the trained model's layers and its compile settings: exact Keras
    `val_*` numbers, identical across workers.
    """

    def __init__(self, model, validation_data, spec):
        import keras

        from kerakit import training

        xv, yv = validation_data[0], validation_data[1]
        self.x, self.y = training.prepare(model, xv, yv, spec, what="validation x")
        if not getattr(model, "inputs", None):
            raise ConfigError(
                "Validation under strategy='multiworker' needs a functional or Sequential model "
                "(with known inputs), like build_model's. Build it with build_model or pass no "
                "validation data."
            )
        self.model = keras.Model(model.inputs, model.outputs, name=f"{model.name}_validation")
        self.model.compile_from_config(model.get_compile_config())

    def logs(self):
        results = self.model.evaluate(
            self.x, self.y, batch_size=1024, verbose=0, return_dict=True
        )
        return {f"val_{k}": float(v) for k, v in results.items()}


# Local launcher --------------------------------------------------------------------


def free_ports(count, host="127.0.0.1"):
    """Returns `count` TCP ports that were free on `host` a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(num_workers, index, ports, host="127.0.0.1"):
    """The `TF_CONFIG` value for worker `index` of a cluster on `host`."""
    return json.dumps(
        {
            "cluster": {"worker": [f"{host}:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


class WorkerResult:
    """How one launched worker ended: `index`, `returncode`, `output` (None unless captured)."""

    def __init__(self, index, returncode, output):
        self.index = index
        self.returncode = returncode
        self.output = output

    def __repr__(self):
        return f"WorkerResult(index={self.index}, returncode={self.returncode})"


def launch_local(command, num_workers=2, *, timeout=600, capture=False, env=None, cwd=None):
    """Runs `command` as `num_workers` workers of one cluster on 127.0.0.1.

    Each process gets a `TF_CONFIG` naming every worker (on free loopback
    ports) and its own index, which is what `strategy="multiworker"` reads —
    the same as on several machines, where each host runs the script with its
    own `TF_CONFIG`. Processes are always cleaned up: if one fails, or the
    time runs out, the others are killed.

    Args:
        command: the program and its arguments, e.g.
            `[sys.executable, "train.py", "--epochs", "3"]`.
        num_workers: number of worker processes. Defaults to 2.
        timeout: seconds for the whole run before every worker is killed and
            `WorkerTimeoutError` is raised. Defaults to 600.
        capture: collect each worker's output (stdout and stderr) instead of
            passing it through. Defaults to False.
        env: extra environment variables for every worker.
        cwd: working directory of the workers.

    Returns:
        A list of `WorkerResult`, one per worker, in index order.

    Example:

    ```python
    results = kerakit.launch_local([sys.executable, "train.py"], num_workers=2)
    assert all(r.returncode == 0 for r in results)
    ```
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ConfigError(f"`num_workers` must be an integer >= 1. Received: num_workers={num_workers!r}")
    command = [os.fspath(part) for part in command]
    if not command:
        raise ConfigError("`command` is empty; pass the program and its arguments, e.g. ['python', 'train.py'].")
    ports = free_ports(num_workers)
    processes = []
    outputs = []
    deadline = time.monotonic() + timeout
    try:
        for index in range(num_workers):
            worker_env = dict(os.environ, **(env or {}))
            worker_env["TF_CONFIG"] = tf_config(num_workers, index, ports)
            worker_env["KERAKIT_WORKER_INDEX"] = str(index)
            output = tempfile.TemporaryFile(mode="w+") if capture else None
            outputs.append(output)
            processes.append(
                subprocess.Popen(
                    command,
                    env=worker_env,
                    cwd=cwd,
                    stdout=output,
                    stderr=subprocess.STDOUT if capture else None,
                    start_new_session=True,
                )
            )
        while any(p.poll() is None for p in processes):
            if any(p.returncode not in (None, 0) for p in processes):
                break  # a failed worker leaves the others waiting on it forever
            if time.monotonic() > deadline:
                raise WorkerTimeoutError(
                    f"{sum(p.poll() is None for p in processes)} of {num_workers} worker(s) were "
                    f"still running after {timeout} s and were killed. Raise `timeout` or check "
                    f"that every worker can reach the others' ports."
                )
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for process in processes:
            process.wait()
    results = []
    for index, (process, output) in enumerate(zip(processes, outputs)):
        text = None
        if output is not None:
            output.seek(0)
            text = output.read()
            output.close()
        results.append(WorkerResult(index, process.returncode, text))
    return results


def main(argv=None):
    """`python -m kerakit.distribute --workers 2 train.py [args]`: a local multi-worker run.

    The command may also be any program: `... --workers 2 -- kerakit run NAME
    --strategy multiworker`. A command starting with a `.py` file runs with
    this Python.
    """
    parser = argparse.ArgumentParser(
        prog="python -m kerakit.distribute",
        description="Run a command as N workers of one cluster on 127.0.0.1 (each with its "
        "own TF_CONFIG), as strategy='multiworker' expects.",
    )
    parser.add_argument("--workers", type=int, default=2, help="number of workers (default 2)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before all are killed")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="script.py [args], or -- program [args]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the script or command every worker runs, e.g. train.py")
    if command[0].endswith(".py"):
        command = [sys.executable, *command]
    try:
        results = launch_local(command, args.workers, timeout=args.timeout)
    except (ConfigError, WorkerTimeoutError, OSError) as error:
        print(f"kerakit.distribute: {error}", file=sys.stderr)
        return 1
    failed = [r.index for r in results if r.returncode != 0]
    if failed:
        print(f"kerakit.distribute: worker(s) {failed} failed.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
