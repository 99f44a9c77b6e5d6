"""What `make run` needs for the reverse direction on one machine: a local signing key with its
JWKS (so a webhook signed the way SaaSquatch signs passes saasquatch_webhook's check), and,
without a Segment write key, a local Segment that prints what forward sends it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LOCAL_KID = "local"
LOCAL_WRITE_KEY = "local-write-key"


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Served:
    """A threaded server on 127.0.0.1 (an ephemeral port) until `close()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        ).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class LocalJwks(_Served):
    """A new RSA key, written to `folder/webhook-key.pem` for `tools webhooks send`, and its
    public half served as a JWKS."""

    def __init__(self, folder: Path) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_path = folder / "webhook-key.pem"
        self.key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.key_path.chmod(0o600)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        keys = {"keys": [{**public, "kid": LOCAL_KID, "use": "sig", "alg": "RS256"}]}

        class Handler(_Quiet):
            def do_GET(self) -> None:
                self.answer(200, keys)

        super().__init__(Handler)
        self.jwks_url = f"{self.url}/.well-known/jwks.json"


class LocalSegment(_Served):
    """Takes `/v1/batch` as Segment does and reports each message (type, event, ids) to `say`."""

    def __init__(self, say: Callable[[str], None]) -> None:
        class Handler(_Quiet):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                for message in body.get("batch", []):
                    shown = {
                        name: message[name]
                        for name in ("type", "event", "userId", "anonymousId", "messageId")
                        if name in message
                    }
                    say(json.dumps(shown))
                self.answer(200, {"success": True})

        super().__init__(Handler)
