"""Fine-tuning: continue training a trained model on new data.

The transfer-learning recipe from the Keras guide, for kerakit models: keep
the body (everything up to the output layer), put a fresh head on when the
new problem has different outputs, train the head with the body frozen, then
optionally unfreeze the body and train everything at a low learning rate.
"""

import dataclasses
import os
import tempfile

from kerakit.backend import set_random_seed
from kerakit.checks import check_count
from kerakit.errors import ConfigError, DataTypeError, unknown_name
from kerakit.metadata import SPEC_LAYER, attach_spec, output_before_spec, spec_output


@dataclasses.dataclass
class FineTuned:
    """What `finetune` returns.

    Attributes:
        model: the fine-tuned `keras.Model` (a copy; the original is untouched).
        history: the `History` of the first phase (body frozen, if `freeze="body"`).
        unfrozen_history: the `History` of the unfrozen phase, or None.
        new_head: whether a fresh output layer replaced the old one.
        frozen: names of the layers frozen during the first phase.
    """

    model: object
    history: object
    unfrozen_history: object
    new_head: bool
    frozen: tuple


def _copy(model):
    """An independent copy of `model`, weights and preprocessing state included.

    A save/load round trip (with `safe_mode=True`) copies what `clone_model`
    would miss, such as adapted lookup vocabularies.
    """
    import keras

    from kerakit.saving import load_model

    with tempfile.TemporaryDirectory(prefix="kerakit-finetune-") as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        copy = load_model(path)
    if not isinstance(copy, keras.Model):
        raise DataTypeError(f"Could not copy the model; got {type(copy).__name__} back.")
    return copy


def _head_layer(model):
    """The layer that produces the model's output (the one `build_model` names "output")."""
    import keras

    try:
        head = model.get_layer("output")
    except ValueError:
        head = model.layers[-1] if model.layers else None
    if not isinstance(head, keras.layers.Dense) or head.output is not output_before_spec(model):
        last = next((layer for layer in reversed(model.layers) if layer.name != SPEC_LAYER), None)
        raise ConfigError(
            f"finetune works on the model's output layer, which must be the final Dense layer "
            f"of a functional or Sequential model. The last layer here is "
            f"{type(last).__name__} {getattr(last, 'name', '')!r}. Fine-tune a model built "
            f"with kerakit.build_model (a raw-column model's final TableOutput layer is not "
            f"supported)."
        )
    return head


def _needs_new_head(old_spec, spec):
    if old_spec is None:
        return True
    return (old_spec.task, old_spec.num_outputs, old_spec.activation) != (
        spec.task, spec.num_outputs, spec.activation
    )


def _with_new_head(model, spec, seed):
    import keras

    if seed is not None:
        set_random_seed(int(seed))
    head = _head_layer(model)
    outputs = keras.layers.Dense(
        spec.num_outputs, activation=spec.activation, dtype="float32", name="output"
    )(head.input)
    return keras.Model(model.input, spec_output(outputs, spec), name=model.name)


def _freeze_body(model, head_name):
    frozen = []
    for layer in model.layers:
        if layer.name != head_name and layer.weights:
            layer.trainable = False
            frozen.append(layer.name)
    return tuple(frozen)


def _freeze_nothing(model, head_name):
    return ()


# freeze option → function(model, head_name) that freezes layers and returns their names
FREEZE = {"body": _freeze_body, None: _freeze_nothing, "none": _freeze_nothing}


def _nested_layers(layer):
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _nested_layers(child)


def _unfreeze(model):
    import keras

    for layer in model.layers:
        layer.trainable = True
    for layer in _nested_layers(model):
        # BatchNormalization stays frozen: a frozen BN layer runs in inference
        # mode, and updating its statistics on a few new examples wrecks the
        # features the body learned (the Keras transfer-learning guide's advice).
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def _compile(model, spec, optimizer, learning_rate, loss, metrics):
    from kerakit import heads
    from kerakit.builders import resolve_loss
    from kerakit.optimizers import get_optimizer

    model.compile(
        optimizer=get_optimizer(optimizer, learning_rate),
        loss=resolve_loss(spec, loss),
        metrics=heads.make_metrics(spec) if metrics == "auto" else metrics,
    )


def finetune(
    model_or_path,
    x,
    y,
    spec=None,
    *,
    freeze="body",
    new_head="auto",
    learning_rate=1e-3,
    epochs=20,
    unfreeze_epochs=0,
    unfreeze_learning_rate="auto",
    optimizer="adam",
    loss="auto",
    metrics="auto",
    batch_size=32,
    validation_data=None,
    validation_split=0.0,
    patience=None,
    callbacks=None,
    class_weight=None,
    seed=None,
    verbose=0,
):
    """Continues training a trained model on new data (transfer learning).

    Works on a copy, so the model you pass is left as it was. When the new
    problem has a different number of classes (or another task) the output
    layer is replaced by a fresh one; the body keeps what it learned. Phase 1
    trains with the body frozen (`freeze="body"`), so the random new head does
    not push large gradients into good features; phase 2 (`unfreeze_epochs >
    0`) unfreezes the body and trains everything at a low learning rate.

    Args:
        model_or_path: a trained `keras.Model`, a `.keras` file (loaded with
            `safe_mode=True`) or a run directory holding `model.keras`.
        x, y: the new training data.
        spec: the new `ProblemSpec`. Defaults to `kerakit.infer_spec(y)`.
        freeze: "body" to freeze every layer but the output layer in phase 1,
            or None to train everything from the start. Defaults to "body".
        new_head: "auto" (a fresh output layer when the spec's outputs differ
            from the model's), True (always: e.g. the same number of classes
            but different classes), or False (keep it). Defaults to "auto".
        learning_rate: learning rate of phase 1. Defaults to 1e-3.
        epochs: epochs of phase 1. Defaults to 20.
        unfreeze_epochs: epochs of phase 2, with every layer trainable.
            Defaults to 0 (no phase 2).
        unfreeze_learning_rate: learning rate of phase 2; "auto" is
            `learning_rate / 10`.
        optimizer: an optimizer name (see `kerakit.get_optimizer`). Defaults to "adam".
        loss, metrics: "auto" for the spec's, or as in `build_model`.
        batch_size, validation_data, validation_split: as in `kerakit.fit`.
        class_weight, seed, verbose: as in `kerakit.fit`.
        patience: early-stopping patience on the validation loss (needs
            validation data); None (default) trains every epoch.
        callbacks: more Keras callbacks for both phases.

    Returns:
        A `FineTuned` with the new `model` and the `history` of each phase.

    Example:

    ```python
    tuned = kk.finetune("runs/digits-0-4/model.keras", x_new, y_new,
                        freeze="body", learning_rate=1e-3, epochs=30,
                        unfreeze_epochs=20, unfreeze_learning_rate=1e-4)
    kk.evaluate(tuned.model, x_test, y_test)
    ```
    """
    from kerakit.analysis import spec_from_model
    from kerakit.callbacks import default_callbacks
    from kerakit.inference import infer_spec
    from kerakit.saving import load_model
    from kerakit.spec import ProblemSpec
    from kerakit.training import fit

    key = freeze.lower() if isinstance(freeze, str) else freeze
    if key not in FREEZE:
        raise unknown_name("freeze option", freeze, ["body", "none"])
    if new_head not in ("auto", True, False):
        raise ConfigError(f"`new_head` must be 'auto', True or False. Received: new_head={new_head!r}")
    for option, value in (("epochs", epochs), ("unfreeze_epochs", unfreeze_epochs)):
        check_count(option, value, minimum=0)
    if spec is None:
        spec = infer_spec(y)
    elif not isinstance(spec, ProblemSpec):
        raise ConfigError(f"`spec` must be a kerakit.ProblemSpec. Received: {spec!r}")

    import keras

    # A file is loaded fresh; a model object is copied so the caller's stays as it was.
    model = _copy(model_or_path) if isinstance(model_or_path, keras.Model) else load_model(model_or_path)
    old_spec = spec_from_model(model)
    replace = _needs_new_head(old_spec, spec) if new_head == "auto" else new_head
    if replace:
        model = _with_new_head(model, spec, seed)
    elif old_spec is not None and old_spec.num_outputs != spec.num_outputs:
        raise ConfigError(
            f"The model has {old_spec.num_outputs} outputs but the new spec needs "
            f"{spec.num_outputs}, so the head cannot be kept. Use new_head='auto' or True."
        )
    head = _head_layer(model)
    frozen = FREEZE[key](model, head.name)
    _compile(model, spec, optimizer, learning_rate, loss, metrics)
    attach_spec(model, spec)

    phase_callbacks = list(callbacks or [])
    if patience is not None:
        phase_callbacks += default_callbacks(spec, patience=patience)
    options = dict(batch_size=batch_size, validation_data=validation_data,
                   validation_split=validation_split, class_weight=class_weight,
                   verbose=verbose, spec=spec)
    history = fit(model, x, y, epochs=epochs, callbacks=phase_callbacks, seed=seed, **options)

    unfrozen_history = None
    if unfreeze_epochs:
        if unfreeze_learning_rate == "auto":
            unfreeze_learning_rate = float(learning_rate) / 10
        _unfreeze(model)
        # A fresh optimizer: recompiling is what makes the new trainable flags count.
        _compile(model, spec, optimizer, unfreeze_learning_rate, loss, metrics)
        if patience is not None:
            phase_callbacks = list(callbacks or []) + default_callbacks(spec, patience=patience)
        unfrozen_history = fit(model, x, y, epochs=unfreeze_epochs, callbacks=phase_callbacks,
                               **options)
    return FineTuned(model=model, history=history, unfrozen_history=unfrozen_history,
                     new_head=bool(replace), frozen=frozen)
