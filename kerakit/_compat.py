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


def keras_global_seed_generator():
    """Keras's global `SeedGenerator` (what unseeded `keras.random` calls draw from), or None.

    A mid-trial checkpoint (kerakit.tuning.checkpoints) saves its state; Keras
    has no public way to reach it without creating one. Read from where
    `keras.utils.set_random_seed` resets it (keras/src/random/seed_generator.py).
    """
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    return global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)


def fit_iterators_per_epoch(dataset):
    """How many times Keras's `fit` calls `iter()` on a `tf.data` pipeline per epoch.

    A reshuffling pipeline draws its next order at each `iter()`, so a fit
    resumed at epoch k (kerakit.tuning.checkpoints) must first make as many
    iterators as the k epochs did. Keras's `EpochIterator` makes one at each
    epoch's start and, when the number of batches is known, one more at its
    end (keras/src/trainers/epoch_iterator.py, `_enumerate_iterator`); no
    public API says so. tests/tuning/test_checkpoints.py pins it.
    """
    return 2 if int(dataset.cardinality()) >= 0 else 1


def build_compiled_metrics(model, batch):
    """Builds a compiled model's metrics (and optimizer) from one batch, without a step.

    Keras builds compiled metrics on the first batch `fit` sees; no public
    API does that without running a step, so this calls
    `Trainer._symbolic_build`, which is what `model.fit` itself calls first
    (keras/src/trainers/trainer.py).
    """
    model._symbolic_build(data_batch=batch)


# Keras Tuner (kerakit.tuning) ------------------------------------------------------------


def set_worker_call_timeout(seconds):
    """Caps how long each call of a distributed Keras Tuner worker to its chief may wait.

    Why no public API serves: Keras Tuner's gRPC client waits up to an hour
    per call (`keras_tuner.src.distribute.oracle_client.TIMEOUT`) and offers
    no argument or setting for it; a worker whose chief died would hang.
    """
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = float(seconds)


def oracle_chief_service():
    """Keras Tuner's gRPC oracle service: `(OracleServicer, add_to_server, exit_chief)`.

    Why no public API serves: Keras Tuner starts its chief only through
    `Tuner.search`, whose loop sleeps 20 s between checks and never gives up
    when no worker calls. kerakit runs Keras Tuner's own servicer in a loop
    of its own (`kerakit.tuning.distributed.serve_chief`), which needs the
    servicer class, the generated gRPC registration and the "search over"
    check from `keras_tuner.src.distribute.oracle_chief` and `keras_tuner.src.protos`.
    """
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    return (oracle_chief.OracleServicer, protos.get_service_grpc().add_OracleServicer_to_server,
            oracle_chief.exit_chief)


def hyperband_round_sizes(oracle):
    """Trials of each round of each bracket of one Hyperband iteration of `oracle`.

    Why no public API serves: `HyperbandOracle` sizes its brackets in the
    private `_get_num_brackets`, `_get_num_rounds` and `_get_size`; kerakit
    prints the number of trials before the search starts ("up to 30
    candidates"), so it asks the oracle itself rather than copy its formula.
    """
    brackets = oracle._get_num_brackets()
    return [oracle._get_size(bracket, round_) for bracket in range(brackets)
            for round_ in range(oracle._get_num_rounds(bracket))]


def tuner_is_worker(tuner):
    """Whether a Keras Tuner tuner is a distributed worker (`BaseTuner._is_worker`).

    Why no public API serves: the role is read from Keras Tuner's
    environment variables by this private method only; a worker's oracle is
    a client of the chief, whose trials it must not list or save.
    """
    return tuner._is_worker()


def tuner_state_file(tuner):
    """The path of a Keras Tuner tuner's state file (`BaseTuner._get_tuner_fname`).

    Why no public API serves: Keras Tuner reloads a search only when this
    file exists and writes it non-atomically in `save`; kerakit writes it
    atomically (a search killed mid-write must still resume) and creates it
    before the first trial ends, and only this private method names it.
    """
    return tuner._get_tuner_fname()
