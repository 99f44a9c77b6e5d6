"""What `make run` needs for the reverse direction on one machine: a local signing key with its
JWKS (so a webhook signed the way SaaSquatch signs passes saasquatch_webhook's check), and,
without a Segment write key, a local Segment that prints what forward sends it. Each serves from
`with` (or `start()`) until `close()`.

The key lives in `make run`'s state folder and is made once: `tools webhooks send --key` keeps
working across restarts, and no stop, however abrupt, leaves a private key in a temp folder."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tools.local_http import LocalServer, QuietHandler, answer_json, public_jwk

LOCAL_KID = "local"
LOCAL_WRITE_KEY = "local-write-key"


def signing_key(path: Path) -> rsa.RSAPrivateKey:
    """The RSA key at `path`, made (0600) if there is none yet. Two runs making it at once agree
    on one: the file appears whole, and only the first one's."""
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise RuntimeError(f"{path} is not an RSA private key: delete it to make a new one")
    return loaded


class LocalJwks(LocalServer):
    """The RSA key at `key_path` (made on first use), for `tools webhooks send`, and its public
    half served as a JWKS at `jwks_url`."""

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        key = signing_key(key_path)
        keys = {"keys": [public_jwk(key.public_key(), LOCAL_KID)]}

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                answer_json(self, 200, keys)

        super().__init__(Handler)
        self.jwks_url = f"{self.base_url}/.well-known/jwks.json"


# What `shown` puts before the JSON, in this order.
HEADLINE = ("type", "event", "name", "userId", "anonymousId")


def shown(message: Mapping[str, Any]) -> str:
    """One message in one line, values included (it is local): `track "Reward Created"
    userId=u-1 {"messageId": ..., "properties": {...}}`."""
    head = [str(message.get("type", "?"))]
    head += [json.dumps(message[name]) for name in ("event", "name") if name in message]
    head += [f"{name}={message[name]}" for name in ("userId", "anonymousId") if name in message]
    rest = {name: value for name, value in message.items() if name not in HEADLINE}
    return " ".join([*head, json.dumps(rest, ensure_ascii=False, separators=(", ", ": "))])


class LocalSegment(LocalServer):
    """Takes `/v1/batch` as Segment does and reports each message of the batch, in one line
    with its values (`shown`), to `say`."""

    def __init__(self, say: Callable[[str], None]) -> None:
        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                for message in body.get("batch", []):
                    say(shown(message))
                answer_json(self, 200, {"success": True})

        super().__init__(Handler)
