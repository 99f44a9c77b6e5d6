"""`python -m tools webhooks`: the tenant's subscriptions through SaaSquatch's API (a stand-in
that speaks its wire format: Basic auth with the API key, `endpointUrl` bodies, JSON errors), and
a signed webhook that saasquatch_webhook's verifier accepts."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stream.signature import JwsVerifier
from tools.local_http import LocalServer, QuietHandler, answer_json
from tools.webhooks import run, stamped

from ..support.local_http import StandIn
from ..support.webhook_signing import JwksStandIn, new_key

TENANT = "test_tenant"
API_KEY = "TEST_sq_api_key_77"


class SubscriptionsStandIn(StandIn):
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, Any]] = []
        self.endpoints: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        stand_in = self
        root = f"/api/v1/{TENANT}/subscription"
        expected = "Basic " + base64.b64encode(f":{API_KEY}".encode()).decode()

        class Handler(QuietHandler):
            def _handle(self: BaseHTTPRequestHandler) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with stand_in._lock:
                    stand_in.requests.append(
                        (self.command, self.path, self.headers.get("Authorization", ""), body)
                    )
                    if self.headers.get("Authorization") != expected:
                        answer_json(self, 401, {"message": "Unauthorized", "statusCode": 401})
                    elif self.command == "POST" and self.path == root:
                        stand_in.endpoints[body["endpointUrl"]] = {**body, "webhookTypes": ["*"]}
                        answer_json(self, 200, stand_in.endpoints[body["endpointUrl"]])
                    elif self.command == "GET" and self.path == root:
                        answer_json(self, 200, list(stand_in.endpoints.values()))
                    elif (
                        self.command == "POST"
                        and self.path.startswith(root + "/")
                        and self.path.endswith("/test")
                    ):
                        url = unquote(self.path.removeprefix(root + "/").removesuffix("/test"))
                        if url in stand_in.endpoints:  # what it answers is not documented:
                            self.send_response(200)  # a body that is not JSON must do
                            self.send_header("Content-Type", "text/plain")
                            self.send_header("Content-Length", "2")
                            self.end_headers()
                            self.wfile.write(b"OK")
                        else:
                            answer_json(self, 404, {"message": "Not found", "statusCode": 404})
                    elif self.command == "DELETE" and self.path.startswith(root + "/"):
                        url = unquote(self.path.removeprefix(root + "/"))
                        found = stand_in.endpoints.pop(url, None)
                        status = 200 if found else 404
                        answer_json(
                            self, status, found or {"message": "Not found", "statusCode": 404}
                        )
                    else:
                        answer_json(self, 404, {"message": "Not found", "statusCode": 404})

            do_GET = do_POST = do_DELETE = _handle

        self._server = LocalServer(Handler)
        self.base_url = self._server.base_url


@pytest.fixture
def saasquatch() -> Iterator[SubscriptionsStandIn]:
    with SubscriptionsStandIn() as stand_in:
        yield stand_in


def tool(*argv: str, **env: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run(list(argv), env)
    return code, out.getvalue(), err.getvalue()


def test_register_list_and_remove_a_subscription(saasquatch: SubscriptionsStandIn) -> None:
    env = {
        "SAASQUATCH_TENANT_ALIAS": TENANT,
        "SAASQUATCH_API_KEY": API_KEY,
        "SAASQUATCH_BASE_URL": saasquatch.base_url,
    }
    url = "https://saasquatch-webhook-x1.a.run.app/"
    assert tool("register", url, **env) == (0, f"registered {url}\n", "")
    assert tool("list", **env) == (0, f"{url}\tsegment-saasquatch\t*\n", "")
    asked = f"asked SaaSquatch to send {url} its test webhook\n"
    assert tool("test", url, **env) == (0, asked, "")
    assert saasquatch.requests[-1][:2] == (
        "POST",
        f"/api/v1/{TENANT}/subscription/https%3A%2F%2Fsaasquatch-webhook-x1.a.run.app%2F/test",
    )
    assert tool("remove", url, **env) == (0, f"removed {url}\n", "")
    assert tool("list", **env) == (0, "", "")
    method, path, _, body = saasquatch.requests[0]
    assert (method, path, body) == (
        "POST",
        f"/api/v1/{TENANT}/subscription",
        {"endpointUrl": url, "name": "segment-saasquatch"},
    )
    assert saasquatch.requests[3][1] == f"/api/v1/{TENANT}/subscription/" + (
        "https%3A%2F%2Fsaasquatch-webhook-x1.a.run.app%2F"
    )


def test_an_error_is_one_line_without_the_key(saasquatch: SubscriptionsStandIn) -> None:
    env = {
        "SAASQUATCH_TENANT_ALIAS": TENANT,
        "SAASQUATCH_API_KEY": "wrong-key-123",
        "SAASQUATCH_BASE_URL": saasquatch.base_url,
    }
    code, out, err = tool("list", **env)
    assert (code, out, err) == (1, "", "webhooks: SaaSquatch answered 401 Unauthorized\n")
    missing = tool("list", SAASQUATCH_BASE_URL=saasquatch.base_url)
    assert missing[0] == 1 and "set SAASQUATCH_TENANT_ALIAS and SAASQUATCH_API_KEY" in missing[2]


def test_send_signs_as_saasquatch_does(tmp_path: Path) -> None:
    key = new_key()
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    body = b'{"id":"w-1","type":"test","data":{}}'
    sample = tmp_path / "hook.json"
    sample.write_bytes(body)
    received: list[tuple[bytes, str]] = []

    class Receiver(QuietHandler):
        def do_POST(self: BaseHTTPRequestHandler) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((data, self.headers["X-Hook-JWS-RFC-7797"]))
            answer_json(self, 200, {"accepted": 1})

    with JwksStandIn() as jwks, _Serving(Receiver) as url:
        jwks.keys["local"] = key
        sent = tool("send", url, str(sample), "--key", str(pem), "--as-is")
        assert sent == (0, '200 {"accepted": 1}\n', "")
        before = time.time()
        assert tool("send", url, str(sample), "--key", str(pem), "--tenant", "acme")[0] == 0
        after = time.time()
        [(data, header), (stamped, stamped_header)] = received
        assert data == body
        verifier = JwsVerifier(jwks.url, 60, 0, 2)
        verifier.verify(verifier.prepare(header), data)  # raises if it were not SaaSquatch's way
        verifier.verify(verifier.prepare(stamped_header), stamped)
        webhook = json.loads(stamped)
        assert before * 1000 - 1 <= webhook.pop("created") <= after * 1000
        assert webhook == {**json.loads(body), "tenantAlias": "acme"}


def test_send_says_in_one_line_what_is_wrong_with_its_key_and_keeps_escapes(
    tmp_path: Path,
) -> None:
    rsa_key = new_key()
    public = tmp_path / "public.pem"
    public.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    elliptic = tmp_path / "ec.pem"
    elliptic.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sample = tmp_path / "hook.json"
    sample.write_bytes(b'{"id":"w-1","type":"test","data":{"name":"\\ud800"}}')
    url = "http://127.0.0.1:9/"
    for key, said in ((public, "not an unencrypted PEM private key"), (elliptic, "not an RSA key")):
        code, out, err = tool("send", url, str(sample), "--key", str(key))
        assert (code, out) == (1, "")
        [line] = err.splitlines()
        assert line.startswith("webhooks: --key is") and said in line
    sent = stamped(sample.read_bytes(), 0.0)
    assert sent.startswith(b'{"id":"w-1","type":"test","data":{"name":"\\ud800"}')


def test_a_list_answered_with_a_body_that_is_not_json_is_one_line() -> None:
    class NotJson(QuietHandler):
        def do_GET(self: BaseHTTPRequestHandler) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"<html/>\r\n")

    with _Serving(NotJson) as url:
        env = {"SAASQUATCH_TENANT_ALIAS": TENANT, "SAASQUATCH_API_KEY": API_KEY}
        code, out, err = tool("list", "--base-url", url.rstrip("/"), **env)
    said = "webhooks: SaaSquatch answered 200 with a body that is not JSON\n"
    assert (code, out, err) == (1, "", said)


class _Serving:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = LocalServer(handler)

    def __enter__(self) -> str:
        self._server.start()
        return self._server.base_url + "/"

    def __exit__(self, *exc: object) -> None:
        self._server.close()
