"""The epoch loop the device-resident engines share: callbacks, progress, History.

An engine supplies `train_epoch(epoch) -> logs` and `validate() -> logs`;
this loop calls Keras callbacks exactly as `model.fit` does with
`steps_per_execution` covering the whole epoch: batch hooks once per epoch
(begin at step 0, end at the last step), epoch hooks with the same `logs`
keys (`loss`, metrics, `val_*`), and returns the model's `History`.
"""

from kerakit._compat import build_compiled_metrics


def float_logs(logs):
    """Logs as Python floats (what `History` and CSVLogger expect)."""
    return {name: float(value) for name, value in logs.items()}


def run_epochs(model, options, steps, train_epoch, validate=None):
    import keras

    callbacks = keras.callbacks.CallbackList(
        options.callbacks,
        add_history=True,
        add_progbar=options.verbose != 0,
        verbose=options.verbose,
        epochs=options.epochs,
        steps=steps,
        model=model,
    )
    model.stop_training = False
    callbacks.on_train_begin()
    epoch_logs = {}
    for epoch in range(options.initial_epoch, options.epochs):
        callbacks.on_epoch_begin(epoch)
        callbacks.on_train_batch_begin(0)
        logs = float_logs(train_epoch(epoch))
        callbacks.on_train_batch_end(steps - 1, logs)
        epoch_logs = dict(logs)
        if validate is not None:
            callbacks.on_test_begin()
            val_logs = float_logs(validate())
            callbacks.on_test_end(val_logs)
            epoch_logs.update({f"val_{name}": value for name, value in val_logs.items()})
        callbacks.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callbacks.on_train_end(logs=epoch_logs)
    return model.history


def build_for_training(model, batch):
    """Builds the optimizer's slots and the compiled metrics before the first step.

    Keras builds compiled metrics on the first batch it sees; see
    `kerakit._compat.build_compiled_metrics` for why this needs Keras internals.
    """
    if not model.compiled:
        from kerakit.errors import ConfigError

        raise ConfigError("The model must be compiled before training: call model.compile(...) "
                          "or build it with kerakit.build_model.")
    build_compiled_metrics(model, batch)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
