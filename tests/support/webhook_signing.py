"""SaaSquatch's side of a signed webhook, for tests: a locally generated RSA key, a JWKS
stand-in that counts its fetches, and the two signatures SaaSquatch sends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tools import webhooks
from tools.local_http import LocalServer, QuietHandler, answer_json, public_jwk

from .local_http import StandIn

KID = "saasquatch-test-key-1"


def new_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def detached_jws(body: bytes, key: Any, kid: str = KID, unencoded: bool = False) -> str:
    """`HEADER..SIGNATURE` over `body`: base64url-encoded as `tools webhooks send` signs it, or
    as is (RFC 7797, `b64: false`)."""
    if not unencoded:
        return webhooks.detached_jws(body, key, kid)
    headers = {"kid": kid, "b64": False, "crit": ["b64"]}
    return jwt.api_jws.encode(
        body, key, algorithm="RS256", headers=headers, is_payload_detached=True
    )


def unsigned_jws(kid: str = KID) -> str:
    """`alg: none`, the oldest forgery."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": kid}).encode())
    return header.rstrip(b"=").decode() + ".."


def hmac_signature(api_key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(api_key.encode(), body, hashlib.sha1).digest()).decode()


class JwksStandIn(StandIn):
    """Serves `/.well-known/jwks.json` with the keys in `keys` (kid -> private key)."""

    def __init__(self) -> None:
        self.keys: dict[str, RSAPrivateKey] = {}
        self.fetches = 0
        self.failing = False
        self._lock = threading.Lock()
        stand_in = self

        class Handler(QuietHandler):
            def do_GET(self: BaseHTTPRequestHandler) -> None:
                with stand_in._lock:
                    stand_in.fetches += 1
                    if stand_in.failing:
                        answer_json(self, 503, {"message": "unavailable"})
                        return
                    keys = [public_jwk(k.public_key(), kid) for kid, k in stand_in.keys.items()]
                answer_json(self, 200, {"keys": keys})

        self._server = LocalServer(Handler)
        self.url = f"{self._server.base_url}/.well-known/jwks.json"
