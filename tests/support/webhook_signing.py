"""SaaSquatch's side of a signed webhook, for tests: a locally generated RSA key, a JWKS
stand-in that counts its fetches (and can answer as a broken, huge or slow JWKS does), and the
two signatures SaaSquatch sends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tools import webhooks
from tools.local_http import LocalServer, QuietHandler, public_jwk

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


@dataclass(frozen=True)
class Answer:
    """What the stand-in serves instead of the key set: a status, a body, its type, and whether
    its length is declared (else the body ends when the connection closes)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    declared: bool = True
    headers: dict[str, str] = field(default_factory=dict)


def key_set(keys: dict[str, RSAPrivateKey], extra: list[Any] | None = None) -> bytes:
    """A JWKS's body: the public half of each key under its kid, then `extra` entries as given."""
    entries = [public_jwk(k.public_key(), kid) for kid, k in keys.items()]
    return json.dumps({"keys": [*entries, *(extra or [])]}).encode()


def huge_key_set(size: int = 10 * 1024 * 1024) -> bytes:
    """`size` bytes of valid JSON: a key set of one key repeated under many kids."""
    one = json.dumps(public_jwk(new_key().public_key(), "k")).encode()
    count = size // (len(one) + 1) + 1
    return b'{"keys":[' + b",".join([one] * count) + b"]}"


# While dripping, one byte of the body per this many seconds.
DRIP_SECONDS = 0.02


class JwksStandIn(StandIn):
    """Serves `/.well-known/jwks.json` with the keys in `keys` (kid -> private key) and the
    entries in `extra`, or `answer` when set (or a 503 while `failing`). `fetches` counts every
    request as it arrives. `hold()` keeps each answer back, `drip()` sends its headers and then
    its body a byte at a time, both until `release()`."""

    def __init__(self) -> None:
        self.keys: dict[str, RSAPrivateKey] = {}
        self.extra: list[Any] = []
        self.fetches = 0
        self.failing = False
        self.answer: Answer | None = None
        self._held = False
        self._dripping = False
        self._released = threading.Event()
        self._arrived = threading.Condition()
        stand_in = self

        class Handler(QuietHandler):
            def do_GET(self: BaseHTTPRequestHandler) -> None:
                with stand_in._arrived:
                    stand_in.fetches += 1
                    stand_in._arrived.notify_all()
                    held, dripping = stand_in._held, stand_in._dripping
                if held:
                    stand_in._released.wait(30)
                answer = stand_in._answer()  # as things are when it goes out
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    if answer.declared:
                        self.send_header("Content-Length", str(len(answer.body)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    body = answer.body
                    while dripping and body and not stand_in._released.wait(DRIP_SECONDS):
                        self.wfile.write(body[:1])
                        self.wfile.flush()
                        body = body[1:]
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its deadline, its size cap)

        self._server = LocalServer(Handler)
        self.url = f"{self._server.base_url}/.well-known/jwks.json"

    def _answer(self) -> Answer:
        if self.answer is not None:
            return self.answer
        if self.failing:
            return Answer(503, b'{"message": "unavailable"}')
        return Answer(body=key_set(self.keys, self.extra))

    def hold(self) -> None:
        """Answers wait, sending nothing, until `release()`."""
        self._released.clear()
        self._held = True

    def drip(self) -> None:
        """Answers send their headers at once, then a byte of the body per `DRIP_SECONDS`
        until `release()`."""
        self._released.clear()
        self._dripping = True

    def release(self) -> None:
        """Answers held or dripping go out whole, and new ones at once."""
        self._held = self._dripping = False
        self._released.set()

    def wait_for_fetches(self, count: int, timeout: float = 10.0) -> bool:
        """Whether `count` fetches have arrived within `timeout` (a signal, not a sleep)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self.fetches >= count, timeout)

    def __exit__(self, *exc: object) -> None:
        self.release()
        super().__exit__(*exc)
