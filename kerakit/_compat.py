"""Third-party private APIs kerakit relies on, each in one place with the reason no public API serves.

Every entry imports its library inside the function, so importing this
module costs nothing and pulls in no library a caller does not use (serving
a `.keras` model on JAX must not import TensorFlow through here). Keep one
section per library; say what is private and why nothing public does it.
"""

# uvicorn (kerakit.serving) -------------------------------------------------------------


def uvicorn_h11_protocol():
    """uvicorn's HTTP/1.1 protocol class, `uvicorn.protocols.http.h11_impl.H11Protocol`.

    Why no public API serves: uvicorn's `Config` offers an idle keep-alive
    timeout and `limit_concurrency`, but no deadline for a request's headers
    (a client sending half its headers holds a socket forever), and both its
    over-capacity 503 and its answer to unparseable HTTP are plain text where
    kerakit's service answers every refusal in JSON and counts it in its
    metrics. The only hook is a protocol class passed as `Config(http=...)`.
    `kerakit.serving._connections.GuardedH11Protocol` subclasses this class
    and relies on these members of it (checked against uvicorn 0.30-0.55):
    `connection_made`, `connection_lost`, `data_received`,
    `on_response_complete`, `send_400_response(msg)`, and the attributes
    `conn` (the `h11.Connection`), `cycle` (with `response_complete`),
    `connections`, `transport` and `loop`.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


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
