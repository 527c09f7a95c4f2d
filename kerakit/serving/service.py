"""The HTTP service: Starlette routes, uvicorn, and micro-batching onto one model thread.

Concurrent `:predict` requests wait in a queue and run as one model call on a
worker thread, so the event loop keeps reading requests while the model
works; each request gets its own rows back.
"""

import asyncio
import collections
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
from pathlib import Path

import numpy as np

from kerakit.errors import ConfigError, RequestError, RunError
from kerakit.serving.models import MAX_VERSION_DIGITS, SIGNATURE, VERSION_NAME, clean_name, load_servables
from kerakit.serving.protocol import fail, format_response, parse_request, short

METRICS_PATH = "/monitoring/prometheus/metrics"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
# Larger bodies are refused with 413 before they are parsed.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Rows run in one model call at most (a single larger request still runs, alone).
MAX_BATCH_SIZE = 64
# How long the batcher waits for more requests once one has arrived.
BATCH_WAIT_MS = 1.0
# Seconds a client has to send a whole request (headers and body) once it starts one
# (and to start one on a new connection); then it gets 408 and the connection closes.
REQUEST_TIMEOUT = 30.0
# Seconds an idle keep-alive connection stays open between requests.
KEEP_ALIVE_TIMEOUT = 5.0
# Open connections at most; more are refused with 503 and closed ("auto": below the
# process's open-file limit, so idle sockets cannot starve the server of descriptors).
MAX_CONNECTIONS = "auto"

_log = logging.getLogger("kerakit.serving")


# Micro-batching -----------------------------------------------------------------


class _Request:
    """One waiting `:predict`: its feeds, rows, the future it awaits, and its batch key."""

    __slots__ = ("feeds", "rows", "future", "key")

    def __init__(self, feeds, rows, future):
        self.feeds = feeds
        self.rows = rows
        self.future = future
        # Only requests with the same per-row shapes and dtypes can be concatenated
        # (a variable-length input gives different shapes).
        self.key = tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(feeds.items()))


class _Batcher:
    """Queues requests for one servable and runs them together on the model thread.

    With batching on, the first waiting request opens a batch; requests that
    arrive within `wait` seconds (or are already queued) and have the same
    per-row shapes and dtypes join it, up to `max_rows` rows; the batch runs
    as one model call and each request gets its slice back. With batching
    off, each request is its own model call. Whatever goes wrong with a batch
    is answered to that batch's requests; the batcher itself keeps running.
    """

    def __init__(self, servable, executor, batching, max_rows, wait, observe=None):
        self.servable = servable
        self.observe = observe  # called with (version, rows) for each model call
        self.batching = batching
        self.max_rows = max_rows
        self.wait = wait
        self.calls = 0  # model calls made: a test can see that requests were batched
        self._executor = executor
        self._pending = collections.deque()
        self._ready = None
        self._task = None

    @property
    def alive(self):
        return self._task is not None and not self._task.done()

    def start(self):
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._task.add_done_callback(self._stopped)

    def _stopped(self, task):
        if not task.cancelled() and task.exception() is not None:
            _log.error("kerakit serve: the batcher of model version %s stopped: %r",
                       self.servable.version, task.exception())
        self._fail_pending(RequestError("The model's batching task has stopped; this model version "
                                        "cannot answer. Restart the server.", 503))

    def _fail_pending(self, error):
        while self._pending:
            future = self._pending.popleft().future
            if not future.done():
                future.set_exception(error)

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for item in self._pending:
            if not item.future.done():
                item.future.cancel()

    async def predict(self, feeds, rows):
        if not self.alive:
            fail("This model version's batching task has stopped; it cannot answer. Restart the "
                 "server.", 503)
        item = _Request(feeds, rows, asyncio.get_running_loop().create_future())
        self._pending.append(item)
        self._ready.set()
        return await item.future

    def _take(self):
        """The next batch: the oldest request and those after it it can be concatenated with."""
        first = self._pending.popleft()
        batch, rows, rest = [first], first.rows, collections.deque()
        while self.batching and self._pending:
            item = self._pending.popleft()
            if item.key == first.key and rows + item.rows <= self.max_rows:
                batch.append(item)
                rows += item.rows
            else:
                rest.append(item)
        rest.extend(self._pending)  # with batching off, nothing above was looked at
        self._pending = rest
        return [item for item in batch if not item.future.cancelled()]

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                if self.batching and self.wait > 0 and sum(i.rows for i in self._pending) < self.max_rows:
                    await asyncio.sleep(self.wait)
                batch = self._take()
                if batch:
                    await self._execute(loop, batch)

    async def _execute(self, loop, batch):
        try:
            if len(batch) == 1:
                feeds = batch[0].feeds
            else:
                feeds = {k: np.concatenate([item.feeds[k] for item in batch]) for k in batch[0].feeds}
            self.calls += 1
            if self.observe is not None:
                self.observe(self.servable.version, sum(item.rows for item in batch))
            outputs = await loop.run_in_executor(self._executor, self.servable.predict, feeds)
            start = 0
            for item in batch:
                if not item.future.done():
                    item.future.set_result({k: v[start:start + item.rows] for k, v in outputs.items()})
                start += item.rows
        except asyncio.CancelledError:
            raise
        except Exception as error:  # every request in the batch learns why; the batcher lives on
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)


# The HTTP service -----------------------------------------------------------------


def _model_convertor():
    from starlette.convertors import Convertor, register_url_convertor

    class ModelName(Convertor):
        # No "/" and no ":", so "NAME:predict" is never read as a model name.
        regex = "[^/:]+"

        def convert(self, value):
            return value

        def to_string(self, value):
            return value

    register_url_convertor("kk_segment", ModelName())


class Service:
    """The TensorFlow-Serving-style REST service around one model's versions.

    `service.app` is a Starlette application (ASGI); `serve` runs it with
    uvicorn. Use this class directly to mount the service in another ASGI app.

    Args:
        model: what `load_servables` accepts, or a `{version: Servable}` dict.
        name: the model name in the URLs (see `load_servables`).
        batching: micro-batch concurrent requests into one model call.
            Defaults to True.
        max_batch_size: most rows per model call. Defaults to 64.
        batch_wait_ms: how long a batch waits for more requests. Defaults to 1.
        max_body_bytes: larger request bodies are refused with 413.
            Defaults to 4 MiB.
        versions: "latest" or "all" (for an export folder). Defaults to "latest".
        request_timeout: seconds a request's body may take to arrive; slower
            ones get 408 and the connection closes. Defaults to 30.
        drift_reference: training statistics for `GET /v1/models/NAME/drift`:
            training rows (an array, or a dict / DataFrame of columns), a
            JSON file from `kerakit.serving.save_reference`, or None to use a
            `drift_reference.json` beside the model, else a raw-column
            model's own preprocessing statistics (see `kerakit.serving.drift`).
            Defaults to None.

    Metrics in Prometheus's text format are at `GET /monitoring/prometheus/metrics`
    (see `kerakit.serving.monitoring`).

    Example:

    ```python
    service = kerakit.serving.Service("models/digits", batch_wait_ms=2)
    app = starlette.applications.Starlette(routes=[Mount("/digits", app=service.app)])
    ```
    """

    def __init__(self, model, name=None, *, batching=True, max_batch_size=MAX_BATCH_SIZE,
                 batch_wait_ms=BATCH_WAIT_MS, max_body_bytes=MAX_BODY_BYTES, versions="latest",
                 request_timeout=REQUEST_TIMEOUT, drift_reference=None):
        for option, value, minimum in (("max_batch_size", max_batch_size, 1),
                                       ("max_body_bytes", max_body_bytes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"`{option}` must be an integer >= {minimum}. Received: {value!r}")
        _check_seconds("request_timeout", request_timeout)
        if not isinstance(batch_wait_ms, (int, float)) or not 0 <= batch_wait_ms <= 1000:
            raise ConfigError(
                f"`batch_wait_ms` must be a number of milliseconds in [0, 1000]. "
                f"Received: {batch_wait_ms!r}"
            )
        if isinstance(model, dict):
            self.servables = dict(model)
            self.name = clean_name(name or next(iter(model.values())).name)
        else:
            self.name, self.servables = load_servables(model, name, versions)
        self.batching = bool(batching)
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait_ms / 1000.0
        self.max_body_bytes = max_body_bytes
        self.request_timeout = float(request_timeout)
        self.batchers = {}
        self._executor = None
        from kerakit.serving.monitoring import ServingMetrics

        self.metrics = ServingMetrics(self.name)
        self.drift = self._drift_monitors(drift_reference)
        self.app = self._build_app()

    def _drift_monitors(self, reference):
        from kerakit.serving.drift import (
            DriftMonitor,
            load_reference,
            reference_path,
            table_reference,
        )

        explicit = load_reference(reference)
        monitors = {}
        for version, servable in self.servables.items():
            found = explicit
            if found is None and servable.source and Path(servable.source).exists():
                path = reference_path(servable.source)
                found = load_reference(path) if path.is_file() else None
            if found is None and servable.table is not None and servable._keep is not None \
                    and hasattr(servable._keep, "layers"):
                found = table_reference(servable._keep, servable.table)
            if found is not None and found.get("features"):
                monitors[version] = DriftMonitor(found)
        return monitors

    # Lifecycle: the batchers live on the server's event loop.
    async def _startup(self):
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kerakit-model")
        for version, servable in self.servables.items():
            batcher = _Batcher(servable, self._executor, self.batching, self.max_batch_size,
                               self.batch_wait, observe=self.metrics.observe_batch)
            batcher.start()
            self.batchers[version] = batcher

    async def _shutdown(self):
        for batcher in self.batchers.values():
            await batcher.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def _build_app(self):
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.routing import Route

        _model_convertor()
        base = "/v1/models/{name:kk_segment}"
        versioned = base + "/versions/{version:kk_segment}"
        routes = []
        for prefix in (base, versioned):
            routes += [
                Route(prefix, self._status, methods=["GET"]),
                Route(prefix + "/metadata", self._metadata, methods=["GET"]),
                Route(prefix + "/drift", self._drift, methods=["GET"]),
                Route(prefix + ":{verb:kk_segment}", self._predict, methods=["POST"]),
            ]

        routes.append(Route(METRICS_PATH, self._prometheus, methods=["GET"]))

        @contextlib.asynccontextmanager
        async def lifespan(app):
            await self._startup()
            try:
                yield
            finally:
                await self._shutdown()

        handlers = {HTTPException: self._http_error, Exception: self._internal_error}
        app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
        # TensorFlow Serving answers a trailing slash with an error, not a redirect.
        app.router.redirect_slashes = False
        return app

    # Responses
    @staticmethod
    def _json(payload, status=200, headers=None):
        from starlette.responses import Response

        return Response(json.dumps(payload), status_code=status, headers=headers,
                        media_type="application/json")

    async def _http_error(self, request, exc):
        messages = {
            404: f"No such endpoint: {request.method} {request.url.path}. This service answers "
                 f"GET /v1/models/{self.name}[/versions/N][/metadata|/drift], "
                 f"GET {METRICS_PATH} and "
                 f"POST /v1/models/{self.name}[/versions/N]:predict.",
            405: f"Method {request.method} is not allowed on {request.url.path}. "
                 f"Allowed: {(exc.headers or {}).get('Allow', 'GET, POST')}.",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        self.metrics.observe_request(None, "unknown", exc.status_code, 0.0)
        return self._json({"error": message}, exc.status_code, exc.headers)

    async def _internal_error(self, request, exc):
        self.metrics.observe_request(None, "unknown", 500, 0.0)
        return self._json({"error": f"Internal error while serving the request: "
                                    f"{type(exc).__name__}: {exc}"}, 500)

    def _servable(self, request):
        name = request.path_params["name"]
        if name != self.name:
            fail(f"Model '{name}' is not served here. This service serves '{self.name}'.", 404)
        version = request.path_params.get("version")
        if version is None:
            request.state.kerakit_version = max(self.servables)
            return self.servables[max(self.servables)]
        loaded = ", ".join(str(v) for v in sorted(self.servables))
        if not VERSION_NAME.fullmatch(version):
            fail(f"Version {short(version)} is not a version number: expected 1 to "
                 f"{MAX_VERSION_DIGITS} digits. Loaded version(s) of model '{self.name}': {loaded}.")
        if int(version) not in self.servables:
            fail(f"Version {short(version)} of model '{self.name}' is not loaded. Loaded "
                  f"version(s): {loaded}.", 404)
        request.state.kerakit_version = int(version)
        return self.servables[int(version)]

    async def _guard(self, handler, request):
        started = time.perf_counter()
        response = await self._guarded(handler, request)
        method = handler.__name__.strip("_").removesuffix("_body")
        self.metrics.observe_request(getattr(request.state, "kerakit_version", None), method,
                                     response.status_code, time.perf_counter() - started)
        return response

    async def _guarded(self, handler, request):
        from starlette.requests import ClientDisconnect

        close = {"connection": "close"}
        if "content-length" in request.headers and "transfer-encoding" in request.headers:
            # Two framings for one body is how requests are smuggled: refuse, then close.
            return self._json({"error": "The request has both Content-Length and Transfer-Encoding "
                                        "headers. Send one of them."}, 400, close)
        try:
            return await handler(request)
        except RequestError as error:
            # The rest of a refused body (413, 408) is read and dropped, within the
            # protocol's deadline: closing now would reset the connection before the
            # client reads the answer.
            return self._json({"error": str(error)}, error.status)
        except ClientDisconnect:
            client = request.client
            _log.warning("kerakit serve: %s%s closed the connection before sending the whole "
                         "request body.", "client " if client else "the client",
                         f"{client.host}:{client.port}" if client else "")
            return self._json({"error": "The client disconnected."}, 400)

    async def _status(self, request):
        return await self._guard(self._status_body, request)

    async def _status_body(self, request):
        chosen = self._servable(request)
        versions = [chosen.version] if "version" in request.path_params else sorted(self.servables, reverse=True)
        return self._json({"model_version_status": [self._version_status(v) for v in versions]})

    def _version_status(self, version):
        batcher = self.batchers.get(version)
        if batcher is None or batcher.alive:
            return {"version": str(version), "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""}}
        return {"version": str(version), "state": "END",
                "status": {"error_code": "UNAVAILABLE",
                           "error_message": "The batching task has stopped. Restart the server."}}

    async def _metadata(self, request):
        return await self._guard(self._metadata_body, request)

    async def _metadata_body(self, request):
        servable = self._servable(request)

        def tensor(info, role):
            dims = [{"size": "-1", "name": ""}] + [
                {"size": str(-1 if d is None else d), "name": ""} for d in info.shape
            ]
            return {"dtype": _TF_DTYPES.get(info.dtype, info.dtype.upper()),
                    "tensor_shape": {"dim": dims, "unknown_rank": False},
                    "name": role}

        signature = {
            "inputs": {i.name: tensor(i, f"{SIGNATURE}_{i.name}:0") for i in servable.inputs},
            "outputs": {o.name: tensor(o, f"StatefulPartitionedCall:{k}")
                        for k, o in enumerate(servable.outputs)},
            "method_name": "tensorflow/serving/predict",
        }
        body = {
            "model_spec": {"name": self.name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
        }
        if servable.table is not None:
            # Not in TensorFlow Serving's answer; clients that do not know it ignore it.
            body["kerakit"] = {k: servable.table.get(k) for k in ("task", "target", "class_names")}
            body["kerakit"]["columns"] = [{"name": c["name"], "kind": c["kind"]}
                                          for c in servable.table["columns"]]
        return self._json(body)

    async def _predict(self, request):
        return await self._guard(self._predict_body, request)

    async def _prometheus(self, request):
        from starlette.responses import Response

        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def _drift(self, request):
        return await self._guard(self._drift_body, request)

    async def _drift_body(self, request):
        servable = self._servable(request)
        monitor = self.drift.get(servable.version)
        if monitor is None:
            fail(f"Version {servable.version} of model '{self.name}' has no training statistics to "
                 f"compare with. Pass drift_reference= (training rows or a file from "
                 f"kerakit.serving.save_reference) or write drift_reference.json beside the "
                 f"model with kerakit.serving.save_reference(x_train, MODEL_PATH).", 404)
        return self._json({"model": self.name, "version": str(servable.version), **monitor.report()})

    async def _predict_body(self, request):
        verb = request.path_params["verb"]
        if verb != "predict":
            status = 400 if verb in ("classify", "regress") else 404
            fail(f"Unsupported method ':{verb}'. This service answers ':predict' "
                  f"(classify/regress need tf.Example signatures).", status)
        servable = self._servable(request)
        try:
            body = await asyncio.wait_for(self._read_body(request), self.request_timeout)
        except asyncio.TimeoutError:
            fail(f"The request body did not arrive within {self.request_timeout:g} s. Send the "
                 f"whole body at once, with a correct Content-Length.", 408)
        feeds, rows, columnar = parse_request(servable, body)
        monitor = self.drift.get(servable.version)
        if monitor is not None:
            try:
                monitor.observe(feeds)
            except Exception as error:  # noqa: BLE001 - monitoring must never fail a prediction
                _log.warning("kerakit serve: drift statistics skipped a request: %r", error)
        try:
            outputs = await self.batchers[servable.version].predict(feeds, rows)
        except (RequestError, asyncio.CancelledError):
            raise
        except Exception as error:  # the model failed on this input: one line in the log, 500
            _log.error("kerakit serve: the model failed on a request: %s: %s",
                       type(error).__name__, str(error)[:500])
            return self._json({"error": f"The model failed on this request: "
                                        f"{type(error).__name__}: {str(error)[:1000]}"}, 500)
        return self._json(format_response(outputs, columnar))

    async def _read_body(self, request):
        limit = self.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                fail(f"Invalid Content-Length header {short(declared)}.")
            if int(declared) > limit:
                fail(f"The request body is {int(declared)} bytes; this service accepts at most "
                      f"{limit}. Send fewer instances per request.", 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                fail(f"The request body is over {limit} bytes, the most this service accepts. "
                      f"Send fewer instances per request.", 413)
            chunks.append(chunk)
        return b"".join(chunks)


_TF_DTYPES = {
    "float16": "DT_HALF", "bfloat16": "DT_BFLOAT16", "float32": "DT_FLOAT", "float64": "DT_DOUBLE",
    "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64",
    "uint8": "DT_UINT8", "uint16": "DT_UINT16", "uint32": "DT_UINT32", "uint64": "DT_UINT64",
    "bool": "DT_BOOL", "string": "DT_STRING",
}


# Running it -------------------------------------------------------------------------


def _check_seconds(option, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise ConfigError(f"`{option}` must be a number of seconds in (0, 3600]. Received: {value!r}")


def _connection_cap(max_connections):
    """`max_connections` as an integer; "auto" stays below the open-file limit."""
    if max_connections == "auto":
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ImportError, OSError, ValueError):  # Windows has no RLIMIT_NOFILE
            soft = 1024
        if soft in (-1, None) or soft > 1_000_000:
            return 1000
        # Leave descriptors for the model's own files, logs and the listening socket.
        return max(1, min(1000, soft - 128))
    if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
        raise ConfigError(f"`max_connections` must be an integer >= 1 or 'auto'. "
                          f"Received: {max_connections!r}")
    return max_connections


def _raw_json_response(status, reason, message):
    """A complete HTTP/1.1 response that closes the connection, for refusals outside the app."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


def _protocol_class(request_timeout, max_connections):
    """uvicorn's h11 protocol plus what it lacks: a deadline for request headers, a connection
    cap refused with JSON, and JSON instead of plain text for malformed HTTP.

    uvicorn times out only idle keep-alive connections (`timeout_keep_alive`);
    a connection that never sends a request, or sends half its headers, would
    stay open forever, and enough of them exhaust the file descriptors. Each
    connection here gets `request_timeout` seconds to deliver its request
    headers (the app bounds the body), counted from the connection or the end
    of the previous response.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._deadline = None
            self._draining = False
            self._over_cap = len(self.connections) > max_connections
            # A connection over the cap is refused at its first bytes, or after a second of silence.
            self._arm(min(1.0, request_timeout) if self._over_cap else request_timeout)

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data):
            if self._over_cap:
                self._refuse_over_cap()
                return
            super().data_received(data)
            if self._draining and self.conn.their_state is not h11.SEND_BODY:
                self._draining = False  # the refused body is all read: a fresh clock for the next
                self._disarm()
            # Between requests (none started, or the last one answered) the headers' clock runs.
            if self.cycle is None or self.cycle.response_complete:
                if self._deadline is None:
                    self._arm(request_timeout)
            else:
                self._disarm()

        def on_response_complete(self):
            super().on_response_complete()
            self._disarm()
            self._draining = not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY
            if self._draining:
                # The client has not finished the request we answered (a refused body): bound it too.
                self._arm(request_timeout)

        def _arm(self, seconds):
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self):
            if getattr(self, "_deadline", None) is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self):
            self._deadline = None
            if self.transport.is_closing():
                return
            if self._over_cap:
                self._refuse_over_cap()
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # the app is answering; it bounds the body itself
            started = bool(self.conn.trailing_data[0]) or self.conn.their_state is not h11.IDLE
            if started and not self._draining:  # a drained body was answered already
                self.transport.write(_raw_json_response(
                    408, "Request Timeout", f"The request did not arrive within "
                    f"{request_timeout:g} s. Send whole requests."))
            self.transport.close()

        def _refuse_over_cap(self):
            if not self.transport.is_closing():
                self.transport.write(_raw_json_response(
                    503, "Service Unavailable", f"The server has {max_connections} open "
                    f"connections, the most it accepts. Retry later, or reuse one connection "
                    f"for several requests."))
                self.transport.close()

        def send_400_response(self, msg):
            # uvicorn answers malformed HTTP (h11 cannot parse it) in plain text.
            self.transport.write(_raw_json_response(
                400, "Bad Request", f"Invalid HTTP request: the request line or headers could "
                f"not be parsed ({msg.rstrip('.')}). Send an HTTP/1.1 request."))
            self.transport.close()

    return Protocol


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
    without an answer.

    Args:
        model: a `keras.Model`, a `.keras` file, a run directory, a SavedModel
            folder or an export base folder with numbered versions.
        host: address to bind. Defaults to "127.0.0.1" (this machine only).
        port: TCP port; 0 picks a free one. Defaults to 8501 (TF Serving's REST port).
        name, batching, max_batch_size, batch_wait_ms, max_body_bytes, versions,
            request_timeout, drift_reference: see `Service`. `request_timeout` also bounds the
            request headers, counted from the connection or the previous answer.
        keep_alive_timeout: seconds an idle connection stays open between
            requests. Defaults to 5.
        max_connections: open connections at most; more get 503 and are
            closed. Defaults to "auto": 1000, or less under a low open-file
            limit (`ulimit -n`).
        block: run in this thread until stopped. Defaults to True.
        ready: called with the `RunningServer` once the socket listens (for
            printing the address when `port=0`).

    Example:

    ```python
    with kerakit.serve(model, port=0, block=False) as server:
        httpx.post(server.model_url + ":predict", json={"instances": x[:2].tolist()})
    ```
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"`port` must be an integer in [0, 65535] (0 picks a free one). Received: {port!r}")
    import uvicorn

    _check_seconds("keep_alive_timeout", keep_alive_timeout)
    _check_seconds("request_timeout", request_timeout)
    cap = _connection_cap(max_connections)
    service = Service(model, name, batching=batching, max_batch_size=max_batch_size,
                      batch_wait_ms=batch_wait_ms, max_body_bytes=max_body_bytes, versions=versions,
                      request_timeout=request_timeout, drift_reference=drift_reference)
    config = uvicorn.Config(service.app, host=host, port=port, log_level="warning",
                            access_log=False, lifespan="on", loop="asyncio",
                            http=_protocol_class(float(request_timeout), cap),
                            timeout_keep_alive=keep_alive_timeout, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    sock = config.bind_socket()
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
