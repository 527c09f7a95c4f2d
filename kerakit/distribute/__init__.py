"""Distributed training: `tf.distribute` strategies, `keras.distribution` on JAX, mixed precision, multi-host.

kerakit scales out with each backend's own machinery (`tf.distribute` on
TensorFlow, `keras.distribution` on JAX) and adds only the decisions:

- `get_strategy("mirrored")` — every local GPU (or every logical CPU device
  when there is no GPU); `"multiworker"` — `tf.distribute.MultiWorkerMirroredStrategy`
  across machines, configured from the `TF_CONFIG` environment variable;
  `"default"` — no distribution. A strategy object is used as given.
- `build_model(..., strategy=...)` creates and compiles the model inside the
  strategy's scope; `kerakit.fit(..., strategy=...)` feeds a distributed
  pipeline with an explicit *global* batch size (split evenly over the replicas).
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
- On JAX, `keras.distribution` replaces `tf.distribute`: under
  `DataParallel` (or `ModelParallel`) `kerakit.fit` shards each epoch's
  batches over the mesh's batch axis (see `kerakit.engines.jax`);
  `use_data_parallel` sets it up, calling `keras.distribution.initialize`
  in a multi-process run.
- `launch_local` / `python -m kerakit.distribute` start N workers of one
  command on 127.0.0.1 with `TF_CONFIG` (TensorFlow) and the
  `KERAS_DISTRIBUTION_*` variables (JAX) set — a multi-host run on one machine.
- `set_default_strategy` makes every `build_model` of a program (or of
  `kerakit run NAME --strategy ...`) use one strategy.

This package is the public home of these names: it gathers
`kerakit.strategies` (names, devices, cluster roles, dtype policies; on the
core floor, so `build_model` and the engines can use them) and its own
`launch` module (local workers). The multi-worker loop is the engine
`kerakit.engines.distributed`, the JAX sharding `kerakit.engines.jax`.
Nothing here imports TensorFlow or JAX at import time.
"""

from kerakit.distribute.launch import WorkerResult, free_ports, jax_environment, launch_local, main, tf_config
from kerakit.strategies import (
    DATA_PARALLEL,
    PRECISION_POLICIES,
    STRATEGIES,
    check_batch_size,
    get_strategy,
    is_chief,
    model_scope,
    model_strategy,
    precision_policy,
    read_tf_config,
    save_on_chief,
    set_default_strategy,
    split_cpu,
    use_data_parallel,
    use_strategy_for_run,
)

__all__ = [
    "DATA_PARALLEL",
    "PRECISION_POLICIES",
    "STRATEGIES",
    "WorkerResult",
    "check_batch_size",
    "free_ports",
    "get_strategy",
    "jax_environment",
    "is_chief",
    "launch_local",
    "main",
    "model_scope",
    "model_strategy",
    "precision_policy",
    "read_tf_config",
    "save_on_chief",
    "set_default_strategy",
    "split_cpu",
    "tf_config",
    "use_data_parallel",
    "use_strategy_for_run",
]
