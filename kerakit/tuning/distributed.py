"""Keras Tuner's own chief/worker mode, with bounded waits.

The roles come from Keras Tuner's environment variables:
`KERASTUNER_TUNER_ID` ("chief" for the chief, any other name for a worker),
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`. The chief serves the
oracle over gRPC with Keras Tuner's `OracleServicer`; kerakit replaces only
the loop around it (it polls every 0.1 s instead of sleeping 20 s, and can
give up when no worker calls for a while) and bounds every worker call, so a
worker whose chief died exits with a clear message instead of waiting an hour.
"""

import os
import threading
import time

from kerakit.errors import ChiefIdleError, ChiefUnavailableError, ConfigError

ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"


def role():
    """Returns "chief", "worker" or "local", from Keras Tuner's environment variables."""
    if ENV_IP not in os.environ:
        return "local"
    missing = [name for name in (ENV_PORT, ENV_ID) if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"{ENV_IP} is set, so this is a distributed search, but {', '.join(missing)} "
            f"is not. Set {ENV_ID} ('chief' or a worker name) and {ENV_PORT} too, or use "
            f"`kerakit tune ... --chief` / `--worker NAME`."
        )
    return "chief" if "chief" in os.environ[ENV_ID] else "worker"


def address():
    return f"{os.environ.get(ENV_IP)}:{os.environ.get(ENV_PORT)}"


def set_environment(tuner_id, ip="127.0.0.1", port=8000):
    """Sets Keras Tuner's variables for this process ("chief" or a worker name)."""
    os.environ[ENV_ID] = str(tuner_id)
    os.environ[ENV_IP] = str(ip)
    os.environ[ENV_PORT] = str(port)


def bound_worker_calls(seconds):
    """Caps how long each worker call to the chief may wait (Keras Tuner's default is an hour)."""
    from kerakit._compat import set_worker_call_timeout

    set_worker_call_timeout(seconds)


def worker_error(error, seconds):
    """Turns a gRPC failure on a worker into a `ChiefUnavailableError`."""
    code = error.code().name if hasattr(error, "code") else type(error).__name__
    return ChiefUnavailableError(
        f"Worker {os.environ.get(ENV_ID)!r} got no answer from the chief at {address()} within "
        f"{seconds:g} s ({code}). The chief is not running or has stopped. Start it first "
        f"(kerakit tune ... --chief) or raise the worker timeout; finished trials are kept and "
        f"the search resumes when the chief restarts with overwrite=False."
    )


def serve_chief(oracle, idle_timeout=None, poll=0.1, print_fn=print):
    """Serves `oracle` to the workers until the search is over.

    Uses Keras Tuner's `OracleServicer`; returns when every worker has been
    told to stop and no trial is running. With `idle_timeout`, raises
    `ChiefIdleError` when no worker has called for that many seconds.
    """
    from concurrent import futures

    import grpc

    from kerakit._compat import oracle_chief_service

    servicer_class, add_to_server, exit_chief = oracle_chief_service()
    last_call = [time.monotonic()]
    lock = threading.Lock()

    class Servicer(servicer_class):
        pass

    def stamped(method):
        def call(self, request, context):
            with lock:
                last_call[0] = time.monotonic()
            return method(self, request, context)
        return call

    for name in ("GetSpace", "UpdateSpace", "CreateTrial", "UpdateTrial", "EndTrial", "GetTrial",
                 "GetBestTrials"):
        setattr(Servicer, name, stamped(getattr(servicer_class, name)))

    servicer = Servicer(oracle)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    add_to_server(servicer, server)
    if server.add_insecure_port(address()) == 0:
        raise ConfigError(
            f"The chief cannot listen on {address()}: the port is taken or the address is not "
            f"this machine's. Pick another {ENV_PORT}."
        )
    server.start()
    print_fn(f"Chief serving the oracle on {address()}; waiting for workers.")
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll)
            with lock:
                idle = time.monotonic() - last_call[0]
            if idle_timeout is not None and idle > idle_timeout:
                running = sorted(t.trial_id for t in oracle.ongoing_trials.values())
                raise ChiefIdleError(
                    f"No worker called the chief at {address()} for {idle:.0f} s (limit "
                    f"{idle_timeout:g} s); unfinished trials: {running or 'none'}. Start workers "
                    f"with {ENV_ID}=<name> {ENV_IP}/{ENV_PORT} set (kerakit tune ... --worker "
                    f"NAME); restarting the chief with overwrite=False resumes the search."
                )
    finally:
        server.stop(grace=1)
