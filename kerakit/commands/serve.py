"""`kerakit serve`: a model behind TensorFlow Serving's REST API.

    kerakit serve runs/digits/<id>/            # a run directory (its model.keras)
    kerakit serve model.keras --port 8501
    kerakit serve models/digits                # an export folder with versions 1/, 2/, ...

Then, as with TensorFlow Serving:

    curl -d '{"instances": [[0.0, 0.1, ...]]}' http://127.0.0.1:8501/v1/models/digits:predict
"""

import ipaddress
import sys

from kerakit.serving import (
    BATCH_WAIT_MS,
    DEFAULT_HOST,
    DEFAULT_PORT,
    KEEP_ALIVE_TIMEOUT,
    MAX_BATCH_SIZE,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    REQUEST_TIMEOUT,
)


def add_arguments(parser):
    parser.add_argument("model", metavar="MODEL_OR_DIR",
                        help="a .keras file, a run directory, a SavedModel folder, or an export "
                             "folder with numbered versions")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port; 0 picks a free one (default {DEFAULT_PORT})")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--model-name", default=None,
                        help="name in the URLs (default: recipe name, export folder or file name)")
    parser.add_argument("--all-versions", action="store_true",
                        help="serve every numbered version of an export folder, not only the latest")
    parser.add_argument("--no-batching", action="store_true",
                        help="one model call per request instead of micro-batching")
    parser.add_argument("--max-batch-size", type=int, default=MAX_BATCH_SIZE,
                        help=f"most rows per model call (default {MAX_BATCH_SIZE})")
    parser.add_argument("--batch-wait-ms", type=float, default=BATCH_WAIT_MS,
                        help=f"how long a batch waits for more requests (default {BATCH_WAIT_MS})")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help=f"larger request bodies get 413 (default {MAX_BODY_BYTES})")
    parser.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT, metavar="SECONDS",
                        help=f"a request's headers and body must arrive within this; else 408 "
                             f"(default {REQUEST_TIMEOUT:g})")
    parser.add_argument("--keep-alive-timeout", type=float, default=KEEP_ALIVE_TIMEOUT, metavar="SECONDS",
                        help=f"idle connections close after this (default {KEEP_ALIVE_TIMEOUT:g})")
    parser.add_argument("--max-connections", default=MAX_CONNECTIONS, metavar="N",
                        help="open connections at most; more get 503 (default auto: 1000, or the "
                             "open-file limit minus 128 when lower)")
    parser.add_argument("--drift-reference", default=None, metavar="JSON",
                        help="training statistics for GET .../drift, from kerakit.serving.save_reference; "
                             "checked at start-up (default: drift_reference.json beside the model, if any)")


def _max_connections(text):
    """`--max-connections`: 'auto' or a whole number >= 1, checked before the model loads."""
    from kerakit.checks import check_count
    from kerakit.errors import ConfigError

    if text == "auto":
        return text
    if not str(text).lstrip("-").isdigit():
        raise ConfigError(f"`--max-connections` must be 'auto' or a whole number >= 1. Received: {text!r}")
    return check_count("max_connections", int(text), spelled="--max-connections")


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args):
    from kerakit.errors import KerakitError
    from kerakit.serving import serve

    if not _is_loopback(args.host):
        print(f"kerakit serve: listening on {args.host}: any machine that can reach this one can "
              f"call the model (there is no authentication).", file=sys.stderr)

    def ready(server):
        print(f"kerakit serve: model '{server.service.name}' version(s) "
              f"{', '.join(str(v) for v in sorted(server.service.servables))} at "
              f"{server.model_url}", flush=True)
        print(f"  curl {server.model_url}/metadata", flush=True)
        print(f"  curl -d '{{\"instances\": [...]}}' {server.model_url}:predict", flush=True)
        print(f"  curl {server.url}/monitoring/prometheus/metrics", flush=True)

    try:
        serve(args.model, host=args.host, port=args.port, name=args.model_name,
              batching=not args.no_batching, max_batch_size=args.max_batch_size,
              batch_wait_ms=args.batch_wait_ms, max_body_bytes=args.max_body_bytes,
              versions="all" if args.all_versions else "latest", block=True, ready=ready,
              drift_reference=args.drift_reference, request_timeout=args.request_timeout,
              keep_alive_timeout=args.keep_alive_timeout,
              max_connections=_max_connections(args.max_connections))
    except KerakitError as error:  # a taken port too: serve names the address
        print(f"kerakit serve: {error}", file=sys.stderr)
        return 2
    return 0
