"""The HTTP service: Starlette routes in front of one batcher per model version."""

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import time
from pathlib import Path

from kerakit.checks import check_count, check_fraction
from kerakit.errors import RequestError
from kerakit.serving._batching import Batcher
from kerakit.serving.models import MAX_VERSION_DIGITS, SIGNATURE, VERSION_NAME, clean_name, load_servables
from kerakit.serving.protocol import fail, format_response, parse_request, short

METRICS_PATH = "/monitoring/prometheus/metrics"
# Larger bodies are refused with 413 before they are parsed.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Rows run in one model call at most (a single larger request still runs, alone).
MAX_BATCH_SIZE = 64
# How long the batcher waits for more requests once one has arrived.
BATCH_WAIT_MS = 1.0
# Seconds a client has to send a whole request (headers and body) once it starts one
# (and to start one on a new connection); then it gets 408 and the connection closes.
REQUEST_TIMEOUT = 30.0

_log = logging.getLogger("kerakit.serving")

_TF_DTYPES = {
    "float16": "DT_HALF", "bfloat16": "DT_BFLOAT16", "float32": "DT_FLOAT", "float64": "DT_DOUBLE",
    "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64",
    "uint8": "DT_UINT8", "uint16": "DT_UINT16", "uint32": "DT_UINT32", "uint64": "DT_UINT64",
    "bool": "DT_BOOL", "string": "DT_STRING",
}


def describe_outputs(servable):
    """What the model's outputs mean, from its problem spec and table metadata: `{}` when unknown.

    Names the task, the classes in output order (`class_names`), the
    positive class of a binary model (its single output is that class's
    probability), and a sentence per output; a raw-column model adds its
    target and columns.

    Example:

    ```python
    describe_outputs(servable)["positive_class"]
    # 'small'
    ```
    """
    spec, table = servable.spec, servable.table or {}
    task = spec.task if spec is not None else table.get("task")
    names = list(spec.class_names) if spec is not None and spec.class_names is not None else table.get("class_names")
    if task is None:
        return {}
    described = {"task": task}
    if table:
        described["target"] = table.get("target")
    target = table.get("target") or "the label"
    outputs = [o.name for o in servable.outputs]
    meaning = None
    if task == "binary":
        names = list(names) if names else [0, 1]
        described["positive_class"] = names[-1]
        meaning = (f"the probability that {target} is {names[-1]!r} (the positive class); "
                   f"1 minus it is the probability of {names[0]!r}")
    elif task in ("multiclass", "multilabel"):
        count = spec.num_classes if task == "multiclass" and spec is not None else \
            spec.num_labels if spec is not None else None
        names = list(names) if names else list(range(count)) if count else None
        what = "one probability per class" if task == "multiclass" else "one probability per label"
        meaning = f"{what}, in the order of class_names" if names else what
    elif task == "regression":
        meaning = f"the predicted value of {target}" if table else "the predicted value(s)"
    if names is not None:
        described["class_names"] = names
    if meaning is not None and len(outputs) == 1:
        described["outputs"] = {outputs[0]: meaning}
    if table.get("columns"):
        described["columns"] = [{"name": c["name"], "kind": c["kind"]} for c in table["columns"]]
    return described


def check_seconds(option, value):
    """Refuses a timeout outside (0, 3600] seconds."""
    return check_fraction(option, value, 0, 3600, include_high=True, example="30 (seconds)")


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
            check_count(option, value, minimum)
        check_seconds("request_timeout", request_timeout)
        check_fraction("batch_wait_ms", batch_wait_ms, 0, 1000, include_low=True, include_high=True,
                       example="1 (milliseconds)")
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
            batcher = Batcher(servable, self._executor, self.batching, self.max_batch_size,
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

        from kerakit.serving._routes import SEGMENT

        base = f"/v1/models/{{name:{SEGMENT}}}"
        versioned = base + f"/versions/{{version:{SEGMENT}}}"
        routes = []
        for prefix in (base, versioned):
            routes += [
                Route(prefix, self._status, methods=["GET"]),
                Route(prefix + "/metadata", self._metadata, methods=["GET"]),
                Route(prefix + "/drift", self._drift, methods=["GET"]),
                Route(prefix + f":{{verb:{SEGMENT}}}", self._predict, methods=["POST"]),
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
        # Not in TensorFlow Serving's answer; clients that do not know it ignore it.
        described = describe_outputs(servable)
        if described:
            body["kerakit"] = described
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

