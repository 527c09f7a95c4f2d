"""The connection layer under the app: a header deadline, a connection cap and JSON refusals.

uvicorn times out only idle keep-alive connections (`timeout_keep_alive`); a
connection that never sends a request, or sends half its headers, would stay
open forever, and enough of them exhaust the file descriptors. Here each
connection gets `request_timeout` seconds to deliver its request headers
(the app bounds the body), counted from the connection or the end of the
previous response; connections over the cap get 503; HTTP that cannot be
parsed gets 400. Each such refusal is JSON, closes the connection and is
reported to `on_refusal(reason)` (the service's Prometheus counter).

This module subclasses uvicorn's h11 protocol (see `kerakit._compat` for why
no public uvicorn API serves), so it imports uvicorn: `serve` imports it
when it starts a server, never at `import kerakit.serving`.
"""

import json

import h11

from kerakit._compat import uvicorn_h11_protocol
from kerakit.checks import check_count, is_integer
from kerakit.errors import ConfigError

# Reasons of the refusals made here, as counted in `kerakit_refusals_total{reason}`.
INVALID_HTTP = "invalid_http"
HEADER_TIMEOUT = "header_timeout"
TOO_MANY_CONNECTIONS = "too_many_connections"


def connection_cap(max_connections):
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
    if not is_integer(max_connections):
        raise ConfigError(f"`max_connections` must be 'auto' or a whole number >= 1. "
                          f"Received: max_connections={max_connections!r}")
    return check_count("max_connections", max_connections)


def raw_json_response(status, reason, message):
    """A complete HTTP/1.1 response that closes the connection, for refusals outside the app."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class GuardedH11Protocol(uvicorn_h11_protocol()):
    """uvicorn's h11 protocol with a header deadline, a connection cap and JSON refusals.

    uvicorn makes one per connection with its own keyword arguments; pass the
    rest with `functools.partial` as `uvicorn.Config(http=...)`.

    Args:
        request_timeout: seconds a connection has to deliver a request's headers.
        max_connections: open connections at most (an integer).
        on_refusal: called with the reason of each refusal made here, or None.
    """

    def __init__(self, *args, request_timeout, max_connections, on_refusal=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.on_refusal = on_refusal
        self._deadline = None
        self._draining = False
        self._over_cap = False

    def connection_made(self, transport):
        super().connection_made(transport)
        self._over_cap = len(self.connections) > self.max_connections
        # A connection over the cap is refused at its first bytes, or after a second of silence.
        self._arm(min(1.0, self.request_timeout) if self._over_cap else self.request_timeout)

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
                self._arm(self.request_timeout)
        else:
            self._disarm()

    def on_response_complete(self):
        super().on_response_complete()
        self._disarm()
        self._draining = not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY
        if self._draining:
            # The client has not finished the request we answered (a refused body): bound it too.
            self._arm(self.request_timeout)

    def send_400_response(self, msg):
        # uvicorn answers malformed HTTP (h11 cannot parse it) in plain text.
        self._refuse(INVALID_HTTP, raw_json_response(
            400, "Bad Request", f"Invalid HTTP request: the request line or headers could "
            f"not be parsed ({msg.rstrip('.')}). Send an HTTP/1.1 request."))

    def _arm(self, seconds):
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self):
        if self._deadline is not None:
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
            self._refuse(HEADER_TIMEOUT, raw_json_response(
                408, "Request Timeout", f"The request did not arrive within "
                f"{self.request_timeout:g} s. Send whole requests."))
        self.transport.close()

    def _refuse_over_cap(self):
        if not self.transport.is_closing():
            self._refuse(TOO_MANY_CONNECTIONS, raw_json_response(
                503, "Service Unavailable", f"The server has {self.max_connections} open "
                f"connections, the most it accepts. Retry later, or reuse one connection "
                f"for several requests."))

    def _refuse(self, reason, response):
        self.transport.write(response)
        self.transport.close()
        if self.on_refusal is not None:
            self.on_refusal(reason)
