"""What `make run` needs for the reverse direction on one machine: a local signing key with its
JWKS (so a webhook signed the way SaaSquatch signs passes saasquatch_webhook's check), and,
without a Segment write key, a local Segment that prints what forward sends it. Each serves from
`with` (or `start()`) until `close()`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tools.local_http import LocalServer, QuietHandler, answer_json, public_jwk

LOCAL_KID = "local"
LOCAL_WRITE_KEY = "local-write-key"


class LocalJwks(LocalServer):
    """A new RSA key, written to `folder/webhook-key.pem` for `tools webhooks send`, and its
    public half served as a JWKS at `jwks_url`."""

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
        keys = {"keys": [public_jwk(key.public_key(), LOCAL_KID)]}

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                answer_json(self, 200, keys)

        super().__init__(Handler)
        self.jwks_url = f"{self.base_url}/.well-known/jwks.json"


class LocalSegment(LocalServer):
    """Takes `/v1/batch` as Segment does and reports each message (type, event, ids) to `say`."""

    def __init__(self, say: Callable[[str], None]) -> None:
        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                for message in body.get("batch", []):
                    shown = {
                        name: message[name]
                        for name in ("type", "event", "userId", "anonymousId", "messageId")
                        if name in message
                    }
                    say(json.dumps(shown))
                answer_json(self, 200, {"success": True})

        super().__init__(Handler)
