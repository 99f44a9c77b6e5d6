"""Small HTTP servers on 127.0.0.1 that log nothing: `make run`'s local JWKS and local Segment
(tools.local_stream) and the tests' stand-ins. Also the JWK of an RSA public key, as a JWKS
serves it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey


def answer(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    """Write a complete answer; a client that already gave up (its timeout) is not an error."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def answer_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> None:
    answer(handler, status, json.dumps(body).encode(), headers=headers)


class QuietHandler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body then waits
    # for the client's delayed ACK (about 40 ms per request on keep-alive connections).
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (`port`, or an ephemeral one), running from `start()`
    (or `with`) until `close()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval: `close()` waits up to one interval for the loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port (only after `start()`: it waits for the loop)."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def public_jwk(key: RSAPublicKey, kid: str) -> dict[str, Any]:
    """`key` as one entry of a JWKS's `keys`, for RS256 signatures under `kid`."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}
