"""The four Functions Framework targets. The Segment -> SaaSquatch direction (`subscription/`):
`ingest` (Segment -> Pub/Sub) and `deliver` (Pub/Sub push -> SaaSquatch). The SaaSquatch ->
Segment direction (`stream/`): `saasquatch_webhook` (webhooks -> Pub/Sub) and `forward` (Pub/Sub
push -> Segment). Binding only; each direction's package holds its policy.

Importing this module reads nothing. The framework looks its `--target` up once, at start; only
then is that target's handler built from its own settings, so `ingest` never reads deliver's
variables (nor the reverse), and a wrong value stops the service with one line naming it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import functions_framework

from common import server
from common.request_log import Handler
from common.settings import ConfigError


def _ingest() -> Handler:
    from subscription.ingest import create_handler
    from subscription.ingest_settings import IngestSettings

    return create_handler(IngestSettings.from_env())


def _deliver() -> Handler:
    from subscription.deliver import create_handler
    from subscription.deliver_settings import DeliverSettings

    return create_handler(DeliverSettings.from_env())


def _saasquatch_webhook() -> Handler:
    from stream.receive import create_handler
    from stream.receive_settings import WebhookSettings

    return create_handler(WebhookSettings.from_env())


def _forward() -> Handler:
    from stream.forward import create_handler
    from stream.forward_settings import ForwardSettings

    return create_handler(ForwardSettings.from_env())


_TARGETS: dict[str, Callable[[], Handler]] = {
    "ingest": _ingest,
    "deliver": _deliver,
    "saasquatch_webhook": _saasquatch_webhook,
    "forward": _forward,
}


def __getattr__(name: str) -> Handler:
    """Build a target on first lookup, then keep it as a plain module attribute."""
    if name not in _TARGETS:
        raise AttributeError(f"module 'main' has no attribute {name!r}")
    server.harden()  # the limits functions-framework's gunicorn starts without
    try:
        handler = _TARGETS[name]()
    except ConfigError as problem:
        sys.stderr.write(f"{problem}\n")
        raise SystemExit(1) from None
    handler.__name__ = name
    globals()[name] = functions_framework.http(handler)
    return globals()[name]
