"""Running the service: `serve` puts it behind uvicorn, in this thread or a background one."""

import functools
import socket
import threading

from kerakit.checks import check_count
from kerakit.errors import RunError
from kerakit.serving._app import (
    BATCH_WAIT_MS,
    MAX_BATCH_SIZE,
    MAX_BODY_BYTES,
    REQUEST_TIMEOUT,
    Service,
    check_seconds,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
# Seconds an idle keep-alive connection stays open between requests.
KEEP_ALIVE_TIMEOUT = 5.0
# Open connections at most; more are refused with 503 and closed ("auto": below the
# process's open-file limit, so idle sockets cannot starve the server of descriptors).
MAX_CONNECTIONS = "auto"


def listen(host, port):
    """A socket bound to `(host, port)`, or a `RunError` naming the address.

    Bound here rather than by `uvicorn.Config.bind_socket`, which logs the
    error and exits the process when the port is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise RunError(
            f"Cannot listen on {host}:{port} ({error.strerror or error}). Pick another port "
            f"(0 picks a free one) or a host address of this machine. Received: host={host!r}, "
            f"port={port!r}"
        ) from None
    return sock


class RunningServer:
    """A service running on a background thread; stop it with `stop()` or a `with` block."""

    def __init__(self, service, server, thread, host, port):
        self.service = service
        self.host = host
        self.port = port
        self._server = server
        self._thread = thread

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def model_url(self):
        return f"{self.url}/v1/models/{self.service.name}"

    def stop(self, timeout=10):
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def serve(model, *, host=DEFAULT_HOST, port=DEFAULT_PORT, name=None, batching=True,
          max_batch_size=MAX_BATCH_SIZE, batch_wait_ms=BATCH_WAIT_MS, max_body_bytes=MAX_BODY_BYTES,
          versions="latest", request_timeout=REQUEST_TIMEOUT, keep_alive_timeout=KEEP_ALIVE_TIMEOUT,
          max_connections=MAX_CONNECTIONS, block=True, ready=None, drift_reference=None):
    """Serves a model over TensorFlow Serving's REST API with uvicorn.

    Binds 127.0.0.1 unless `host` says otherwise. With `block=True` (the
    command line) it runs until interrupted; with `block=False` it runs on a
    background thread and returns a `RunningServer` (use it in a `with` block).

    Every refusal is JSON `{"error": ...}`: the app's own (4xx, 500), a request
    that is not whole within `request_timeout` (408, then the connection
    closes), a connection over `max_connections` (503, closed), and HTTP that
    cannot be parsed (400, closed). A connection that stays silent is closed
    without an answer. Each refusal is counted by reason in the service's
    Prometheus metrics (see `kerakit.serving.monitoring`).

    Args:
        model: a `keras.Model`, a `.keras` file, a run directory, a SavedModel
            folder or an export base folder with numbered versions.
        host: address to bind. Defaults to "127.0.0.1" (this machine only).
        port: TCP port; 0 picks a free one. Defaults to 8501 (TF Serving's REST port).
        name, batching, max_batch_size, batch_wait_ms: see `Service`.
        max_body_bytes, versions, drift_reference: see `Service`.
        request_timeout: see `Service`; it also bounds the request headers,
            counted from the connection or the previous answer.
        keep_alive_timeout: seconds an idle connection stays open between
            requests. Defaults to 5.
        max_connections: open connections at most; more get 503 and are
            closed. Defaults to "auto": 1000, or less under a low open-file
            limit (`ulimit -n`).
        block: run in this thread until stopped. Defaults to True.
        ready: called with the `RunningServer` once the socket listens (for
            printing the address when `port=0`).

    Raises:
        RunError: the address cannot be bound (the port is taken, or the
            host is not an address of this machine).
        ConfigError: an option is out of range, or the drift reference
            is missing or malformed.

    Example:

    ```python
    with kerakit.serve(model, port=0, block=False) as server:
        httpx.post(server.model_url + ":predict", json={"instances": x[:2].tolist()})
    ```
    """
    check_count("port", port, minimum=0, maximum=65535)  # 0 picks a free port
    import uvicorn

    from kerakit.serving._connections import GuardedH11Protocol, connection_cap

    check_seconds("keep_alive_timeout", keep_alive_timeout)
    check_seconds("request_timeout", request_timeout)
    cap = connection_cap(max_connections)
    service = Service(model, name, batching=batching, max_batch_size=max_batch_size,
                      batch_wait_ms=batch_wait_ms, max_body_bytes=max_body_bytes, versions=versions,
                      request_timeout=request_timeout, drift_reference=drift_reference)
    config = uvicorn.Config(service.app, host=host, port=port, log_level="warning",
                            access_log=False, lifespan="on", loop="asyncio",
                            http=functools.partial(GuardedH11Protocol, request_timeout=float(request_timeout),
                                                   max_connections=cap,
                                                   on_refusal=service.metrics.observe_refusal),
                            timeout_keep_alive=keep_alive_timeout, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    sock = listen(host, port)
    bound_port = sock.getsockname()[1]
    if block:
        handle = RunningServer(service, server, threading.current_thread(), host, bound_port)
        if ready is not None:
            ready(handle)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after shutting down cleanly
            pass
        return handle
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="kerakit-serve", daemon=True)
    thread.start()
    handle = RunningServer(service, server, thread, host, bound_port)
    for _ in range(600):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    if not server.started:
        server.should_exit = True
        raise RunError(f"The server did not start on {host}:{bound_port}.")
    if ready is not None:
        ready(handle)
    return handle
