"""Export and serve models: SavedModel versions and a TensorFlow-Serving-compatible REST service.

`export` writes a SavedModel into a numbered version folder (`1/`, `2/`, ...)
as TensorFlow Serving expects, with named inputs. `serve` puts a model behind
TensorFlow Serving's REST API, so existing clients work unchanged:

    GET  /v1/models/NAME[/versions/N]              status
    GET  /v1/models/NAME[/versions/N]/metadata     signature: input/output names, shapes, dtypes,
                                                   and what the outputs mean ("kerakit": task,
                                                   class_names in output order, positive_class)
    POST /v1/models/NAME[/versions/N]:predict      {"instances": ...} or {"inputs": ...}
    GET  /v1/models/NAME[/versions/N]/drift        served inputs vs training statistics (PSI)
    GET  /monitoring/prometheus/metrics            Prometheus metrics (requests, latency, batches)

Every request is validated (JSON, shape, dtype, finiteness, body size) before
the model sees it and refused with `{"error": "..."}` and a 4xx status when it
is wrong; every refusal, including those made before a request reaches the
app (unparseable HTTP, header timeouts, the connection cap), is counted by
reason in the Prometheus metrics. Concurrent requests are micro-batched into
one model call. Starlette routes the requests and uvicorn speaks HTTP.

`.keras` files are always loaded with `safe_mode=True`. A SavedModel is a
TensorFlow program: serve only exports you trust (TensorFlow's own advice).
It is served only from a folder named explicitly: a run directory
(manifest.json or model.keras inside) always serves its model.keras.

Every Keras backend serves a `.keras` model; a SavedModel needs TensorFlow.
Importing this package does not import TensorFlow, and serving a `.keras`
model on JAX or PyTorch never does.
"""

from kerakit.serving._app import (
    BATCH_WAIT_MS,
    MAX_BATCH_SIZE,
    MAX_BODY_BYTES,
    REQUEST_TIMEOUT,
    Service,
)
from kerakit.serving._server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    KEEP_ALIVE_TIMEOUT,
    MAX_CONNECTIONS,
    RunningServer,
    serve,
)
from kerakit.serving.drift import DriftMonitor, reference_statistics, save_reference
from kerakit.serving.models import (
    Servable,
    TensorInfo,
    export,
    input_signature,
    load_servables,
)
from kerakit.serving.monitoring import ServingMetrics
from kerakit.serving.protocol import format_response, parse_request

__all__ = [
    "BATCH_WAIT_MS", "DEFAULT_HOST", "DriftMonitor", "ServingMetrics", "DEFAULT_PORT", "KEEP_ALIVE_TIMEOUT", "MAX_BATCH_SIZE",
    "MAX_BODY_BYTES", "MAX_CONNECTIONS", "REQUEST_TIMEOUT",
    "RunningServer", "Servable", "Service", "TensorInfo", "export", "format_response",
    "input_signature", "load_servables", "parse_request", "reference_statistics", "save_reference", "serve",
]
