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
import threading

import numpy as np

from kerakit.errors import ConfigError, RequestError, RunError
from kerakit.serving.models import SIGNATURE, VERSION_NAME, clean_name, load_servables
from kerakit.serving.protocol import fail, format_response, parse_request, short

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
# Larger bodies are refused with 413 before they are parsed.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Rows run in one model call at most (a single larger request still runs, alone).
MAX_BATCH_SIZE = 64
# How long the batcher waits for more requests once one has arrived.
BATCH_WAIT_MS = 1.0


# Micro-batching -----------------------------------------------------------------


class _Batcher:
    """Queues requests for one servable and runs them together on the model thread.

    With batching on, the first waiting request opens a batch; requests that
    arrive within `wait` seconds (or are already queued) join it, up to
    `max_rows` rows; the batch runs as one model call and each request gets
    its slice back. With batching off, each request is its own model call.
    """

    def __init__(self, servable, executor, batching, max_rows, wait):
        self.servable = servable
        self.batching = batching
        self.max_rows = max_rows
        self.wait = wait
        self.calls = 0  # model calls made: a test can see that requests were batched
        self._executor = executor
        self._pending = collections.deque()
        self._ready = None
        self._task = None

    def start(self):
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for _, _, future in self._pending:
            if not future.done():
                future.cancel()

    async def predict(self, feeds, rows):
        future = asyncio.get_running_loop().create_future()
        self._pending.append((feeds, rows, future))
        self._ready.set()
        return await future

    def _take(self):
        batch = [self._pending.popleft()]
        rows = batch[0][1]
        while self.batching and self._pending and rows + self._pending[0][1] <= self.max_rows:
            item = self._pending.popleft()
            batch.append(item)
            rows += item[1]
        return batch

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                if self.batching and self.wait > 0 and sum(r for _, r, _ in self._pending) < self.max_rows:
                    await asyncio.sleep(self.wait)
                batch = [item for item in self._take() if not item[2].cancelled()]
                if not batch:
                    continue
                await self._execute(loop, batch)

    async def _execute(self, loop, batch):
        if len(batch) == 1:
            feeds = batch[0][0]
        else:
            feeds = {k: np.concatenate([item[0][k] for item in batch]) for k in batch[0][0]}
        self.calls += 1
        try:
            outputs = await loop.run_in_executor(self._executor, self.servable.predict, feeds)
        except Exception as error:  # the model failed: every request in the batch learns why
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        start = 0
        for _, rows, future in batch:
            if not future.done():
                future.set_result({k: v[start:start + rows] for k, v in outputs.items()})
            start += rows


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

    Example:

    ```python
    service = kerakit.serving.Service("models/digits", batch_wait_ms=2)
    app = starlette.applications.Starlette(routes=[Mount("/digits", app=service.app)])
    ```
    """

    def __init__(self, model, name=None, *, batching=True, max_batch_size=MAX_BATCH_SIZE,
                 batch_wait_ms=BATCH_WAIT_MS, max_body_bytes=MAX_BODY_BYTES, versions="latest"):
        for option, value, minimum in (("max_batch_size", max_batch_size, 1),
                                       ("max_body_bytes", max_body_bytes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"`{option}` must be an integer >= {minimum}. Received: {value!r}")
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
        self.batchers = {}
        self._executor = None
        self.app = self._build_app()

    # Lifecycle: the batchers live on the server's event loop.
    async def _startup(self):
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kerakit-model")
        for version, servable in self.servables.items():
            batcher = _Batcher(servable, self._executor, self.batching, self.max_batch_size,
                               self.batch_wait)
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
                Route(prefix + ":{verb:kk_segment}", self._predict, methods=["POST"]),
            ]

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
                 f"GET /v1/models/{self.name}[/versions/N][/metadata] and "
                 f"POST /v1/models/{self.name}[/versions/N]:predict.",
            405: f"Method {request.method} is not allowed on {request.url.path}. "
                 f"Allowed: {(exc.headers or {}).get('Allow', 'GET, POST')}.",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        return self._json({"error": message}, exc.status_code, exc.headers)

    async def _internal_error(self, request, exc):
        return self._json({"error": f"Internal error while serving the request: "
                                    f"{type(exc).__name__}: {exc}"}, 500)

    def _servable(self, request):
        name = request.path_params["name"]
        if name != self.name:
            fail(f"Model '{name}' is not served here. This service serves '{self.name}'.", 404)
        version = request.path_params.get("version")
        if version is None:
            return self.servables[max(self.servables)]
        loaded = ", ".join(str(v) for v in sorted(self.servables))
        if not VERSION_NAME.match(version) or int(version) not in self.servables:
            fail(f"Version {short(version)} of model '{self.name}' is not loaded. Loaded "
                  f"version(s): {loaded}.", 404)
        return self.servables[int(version)]

    async def _guard(self, handler, request):
        try:
            return await handler(request)
        except RequestError as error:
            return self._json({"error": str(error)}, error.status)

    async def _status(self, request):
        return await self._guard(self._status_body, request)

    async def _status_body(self, request):
        chosen = self._servable(request)
        versions = [chosen.version] if "version" in request.path_params else sorted(self.servables, reverse=True)
        return self._json({"model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]})

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

    async def _predict_body(self, request):
        verb = request.path_params["verb"]
        if verb != "predict":
            status = 400 if verb in ("classify", "regress") else 404
            fail(f"Unsupported method ':{verb}'. This service answers ':predict' "
                  f"(classify/regress need tf.Example signatures).", status)
        servable = self._servable(request)
        body = await self._read_body(request)
        feeds, rows, columnar = parse_request(servable, body)
        outputs = await self.batchers[servable.version].predict(feeds, rows)
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
          versions="latest", block=True, ready=None):
    """Serves a model over TensorFlow Serving's REST API with uvicorn.

    Binds 127.0.0.1 unless `host` says otherwise. With `block=True` (the
    command line) it runs until interrupted; with `block=False` it runs on a
    background thread and returns a `RunningServer` (use it in a `with` block).

    Args:
        model: a `keras.Model`, a `.keras` file, a run directory, a SavedModel
            folder or an export base folder with numbered versions.
        host: address to bind. Defaults to "127.0.0.1" (this machine only).
        port: TCP port; 0 picks a free one. Defaults to 8501 (TF Serving's REST port).
        name, batching, max_batch_size, batch_wait_ms, max_body_bytes, versions:
            see `Service`.
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

    service = Service(model, name, batching=batching, max_batch_size=max_batch_size,
                      batch_wait_ms=batch_wait_ms, max_body_bytes=max_body_bytes, versions=versions)
    config = uvicorn.Config(service.app, host=host, port=port, log_level="warning",
                            access_log=False, lifespan="on", http="h11", loop="asyncio",
                            timeout_graceful_shutdown=5)
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
