"""SaaSquatch's webhook subscriptions for a tenant, and a signed webhook for local tests.

    python -m tools webhooks register https://saasquatch-webhook-....run.app/ [--name NAME]
    python -m tools webhooks list
    python -m tools webhooks test https://saasquatch-webhook-....run.app/
    python -m tools webhooks remove https://saasquatch-webhook-....run.app/
    python -m tools webhooks send http://127.0.0.1:8082/ samples/webhook_reward_created.json \\
        --key local-webhook-key.pem --kid local [--tenant local_tenant] [--as-is]

`register`, `list`, `test` and `remove` call SaaSquatch's webhook subscription API
(`/api/v1/TENANT/subscription`) with the tenant's API key, read as deliver reads it
(`SAASQUATCH_TENANT_ALIAS`, `SAASQUATCH_API_KEY`, `SAASQUATCH_BASE_URL`). Registering the same
URL twice leaves one subscription (SaaSquatch's rule); `test` asks SaaSquatch to send the
subscription its `test` webhook (which forward acknowledges without a call).

`send` signs a webhook file the way SaaSquatch does (`X-Hook-JWS-RFC-7797`, RS256) with a local
key and posts it: what `make run` prints to try the reverse direction. The receiver drops a
webhook made outside its age window or for another tenant, so `send` stamps `created` with the
time of sending (and `tenantAlias` with `--tenant`) unless `--as-is` sends the file's bytes
untouched. The API key is never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from saasquatch.client import basic_auth, tenant_url

TIMEOUT = 10.0


class WebhookToolError(Exception):
    """What went wrong, in one line for the operator."""


class Subscriptions:
    """The tenant's webhook subscriptions (SaaSquatch's `subscription` resource)."""

    def __init__(self, base_url: str, tenant: str, api_key: str) -> None:
        if not tenant or not api_key:
            raise WebhookToolError(
                "set SAASQUATCH_TENANT_ALIAS and SAASQUATCH_API_KEY (the tenant's API key)"
            )
        self._root = tenant_url(base_url, tenant) + "/subscription"
        self._headers = {"Authorization": basic_auth(api_key), "Accept": "application/json"}

    def _call(self, method: str, url: str, body: Any = None, *, read: bool = True) -> Any:
        """SaaSquatch's JSON answer (None when empty, or when `read` is off: an answer whose
        body we do not use, which need not be JSON)."""
        try:
            answer = requests.request(
                method, url, json=body, headers=self._headers, timeout=TIMEOUT
            )
        except requests.RequestException as error:
            raise WebhookToolError(
                f"SaaSquatch cannot be reached: {type(error).__name__}"
            ) from None
        if not 200 <= answer.status_code < 300:
            message = ""
            with contextlib.suppress(ValueError, AttributeError):
                message = str(answer.json().get("message", ""))
            raise WebhookToolError(f"SaaSquatch answered {answer.status_code} {message}".strip())
        if not read or not answer.content.strip():
            return None
        try:
            return answer.json()
        except ValueError:
            raise WebhookToolError(
                f"SaaSquatch answered {answer.status_code} with a body that is not JSON"
            ) from None

    def register(self, endpoint: str, name: str) -> Any:
        return self._call("POST", self._root, {"endpointUrl": endpoint, "name": name})

    def list(self) -> list[dict[str, Any]]:
        found = self._call("GET", self._root)
        return found if isinstance(found, list) else []

    def remove(self, endpoint: str) -> None:
        self._call("DELETE", f"{self._root}/{quote(endpoint, safe='')}", read=False)

    def test(self, endpoint: str) -> None:
        """SaaSquatch sends the subscription at `endpoint` a `test` webhook."""
        self._call("POST", f"{self._root}/{quote(endpoint, safe='')}/test", read=False)


def stamped(body: bytes, now: float, tenant: str | None = None) -> bytes:
    """`body` (a webhook) with `created` set to `now` (and `tenantAlias` to `tenant`), as
    SaaSquatch would send it today; compact JSON, as SaaSquatch writes it."""
    try:
        webhook = json.loads(body)
    except ValueError:
        raise WebhookToolError("the file is not JSON (send it with --as-is)") from None
    if not isinstance(webhook, dict):
        raise WebhookToolError("the file is not a webhook (a JSON object)")
    webhook["created"] = int(now * 1000)
    if tenant is not None:
        webhook["tenantAlias"] = tenant
    text = json.dumps(webhook, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate, escaped in the file: kept escaped
        return json.dumps(webhook, separators=(",", ":")).encode()


def signing_key(pem: bytes) -> RSAPrivateKey:
    """The RSA private key in `pem`, or one line saying what the file is instead."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise WebhookToolError(
            "--key is not an unencrypted PEM private key (a public key cannot sign)"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise WebhookToolError("--key is not an RSA key: SaaSquatch signs with RS256")
    return key


def detached_jws(body: bytes, key: Any, kid: str) -> str:
    """`HEADER..SIGNATURE`: an RS256 JWS over `body` with the payload left out, as SaaSquatch
    signs a webhook (`key`: a PEM private key, or a cryptography RSA key)."""
    token = jwt.api_jws.encode(body, key, algorithm="RS256", headers={"kid": kid})
    protected, _, signature = token.split(".")
    return f"{protected}..{signature}"


def signed_post(url: str, body: bytes, key_pem: bytes, kid: str) -> requests.Response:
    """`body` posted as SaaSquatch posts a webhook: with a detached RS256 JWS over it."""
    headers = {
        "Content-Type": "application/json",
        "X-Hook-JWS-RFC-7797": detached_jws(body, signing_key(key_pem), kid),
    }
    return requests.post(url, data=body, headers=headers, timeout=TIMEOUT)


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools webhooks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    register = commands.add_parser("register", help="subscribe an endpoint to every webhook")
    register.add_argument("endpoint", help="saasquatch_webhook's public URL")
    register.add_argument("--name", default="segment-saasquatch")
    commands.add_parser("list", help="the tenant's subscriptions")
    remove = commands.add_parser("remove", help="unsubscribe an endpoint")
    remove.add_argument("endpoint")
    test = commands.add_parser(
        "test", help="ask SaaSquatch to send a subscription its test webhook"
    )
    test.add_argument("endpoint", help="the subscribed URL, as `list` shows it")
    send = commands.add_parser("send", help="sign a webhook file with a local key and post it")
    send.add_argument("url")
    send.add_argument("file", type=Path)
    send.add_argument("--key", type=Path, required=True, help="a PEM RSA private key")
    send.add_argument("--kid", default="local")
    send.add_argument("--tenant", help="set the webhook's tenantAlias")
    send.add_argument(
        "--as-is", action="store_true", help="send the file's bytes (no fresh `created`)"
    )
    for command in (register, remove, test, commands.choices["list"]):
        command.add_argument(
            "--base-url",
            default=env.get("SAASQUATCH_BASE_URL") or "https://app.referralsaasquatch.com",
        )
    return parser


def run(argv: Sequence[str], env: Mapping[str, str]) -> int:
    args = _parser(env).parse_args(argv)
    try:
        if args.command == "send":
            body = args.file.read_bytes()
            if not args.as_is:
                body = stamped(body, time.time(), args.tenant)
            answer = signed_post(args.url, body, args.key.read_bytes(), args.kid)
            print(f"{answer.status_code} {answer.text.strip()}")
            return 0 if answer.status_code == 200 else 1
        subscriptions = Subscriptions(
            args.base_url, env.get("SAASQUATCH_TENANT_ALIAS", ""), env.get("SAASQUATCH_API_KEY", "")
        )
        if args.command == "register":
            subscriptions.register(args.endpoint, args.name)
            print(f"registered {args.endpoint}")
        elif args.command == "remove":
            subscriptions.remove(args.endpoint)
            print(f"removed {args.endpoint}")
        elif args.command == "test":
            subscriptions.test(args.endpoint)
            print(f"asked SaaSquatch to send {args.endpoint} its test webhook")
        else:
            for each in subscriptions.list():
                types = ",".join(each.get("webhookTypes") or ["*"])
                print(f"{each.get('endpointUrl')}\t{each.get('name') or ''}\t{types}")
    except (WebhookToolError, OSError) as error:
        print(f"webhooks: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str]) -> int:
    return run(argv, os.environ)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
