"""Third-party private APIs kerakit uses, in one place, each with the reason no public one serves.

Base floor: imports nothing from kerakit. When an upstream release adds a
public way, the function here changes and its callers do not.
"""

# Keras: random seeds and training state (used by kerakit.backend, kerakit.engines) ----------


def seed_keras_only(seed):
    """Sets Keras's global seed without touching TensorFlow.

    `keras.utils.set_random_seed` also seeds TensorFlow whenever it is
    installed, which imports it (seconds, hundreds of MB) on a JAX or PyTorch
    machine. No public API resets Keras's global seed generator alone; these
    are the two lines Keras runs for it (keras/src/utils/rng_utils.py).
    """
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


def build_compiled_metrics(model, batch):
    """Builds a compiled model's metrics (and optimizer) from one batch, without a step.

    Keras builds compiled metrics on the first batch `fit` sees; no public
    API does that without running a step, so this calls
    `Trainer._symbolic_build`, which is what `model.fit` itself calls first
    (keras/src/trainers/trainer.py).
    """
    model._symbolic_build(data_batch=batch)
