"""`kerakit.distribute.fit`: `kerakit.fit` with a strategy (the `distributed` engine trains)."""


def fit(model, x, y=None, *, strategy, batch_size=32, **fit_options):
    """Trains `model` with a distribution strategy; the same as `kerakit.fit(strategy=...)`.

    `batch_size` is the global batch: each step consumes `batch_size` examples
    in total, `batch_size / num_replicas_in_sync` on each replica. The model
    must have been built under the same strategy. See
    `kerakit.engines.distributed` for how each strategy trains.

    Example:

    ```python
    kerakit.split_cpu(2)                      # or run on a machine with 2 GPUs
    model = kerakit.build_model(spec, input_shape=(64,), strategy="mirrored")
    history = kerakit.fit(model, x, y, epochs=5, batch_size=64, strategy="mirrored")
    ```
    """
    from kerakit.training import fit as kerakit_fit

    return kerakit_fit(model, x, y, strategy=strategy, batch_size=batch_size, **fit_options)
