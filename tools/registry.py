"""The one registry of the names and defaults the tools and the build share.

- `TARGETS`: each service's settings class, by its Functions Framework target (main.py's four).
  `default(name)` is the default of any variable of any of them, `setting(name, env)` the value
  a service would read from `env`.
- `DECLARED`: what is no service's setting but provisioning, monitoring and the build name: the
  Cloud Run services, the push subscriptions and the dead-letter pull subscriptions (each named
  after its topic, a setting), and the push subscriptions' delivery policy. Declared once here.
- `BUILD_SUBSTITUTIONS`: which of cloudbuild.yaml's substitutions are literal copies of which of
  these defaults (Cloud Build cannot compute them); tests/tools/test_registry.py holds the yaml
  to them, so the two cannot drift.

Importing this module needs the standard library only, since `tools.monitoring` runs in the
gcloud image: the settings classes (pydantic models) are imported the first time a setting's
default is asked for, and a missing package then surfaces as ImportError.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.settings import ServiceSettings

# Target -> "module:Class" of its settings, in the order `default` looks a variable up.
TARGETS: dict[str, str] = {
    "ingest": "subscription.ingest_settings:IngestSettings",
    "deliver": "subscription.deliver_settings:DeliverSettings",
    "saasquatch_webhook": "stream.receive_settings:WebhookSettings",
    "forward": "stream.forward_settings:ForwardSettings",
}


@dataclass(frozen=True)
class Declared:
    """A name no service reads: a value of its own, or a name made from a setting's value (the
    setting `after`, then `suffix`), so that a topic given on a command line names its
    subscriptions too."""

    about: str
    value: str = ""
    after: str = ""
    suffix: str = ""

    def named_after(self, value: str) -> str:
        return f"{value}{self.suffix}"


DECLARED: dict[str, Declared] = {
    "INGEST_SERVICE": Declared("ingest's Cloud Run service", "segment-ingest"),
    "DELIVER_SERVICE": Declared("deliver's Cloud Run service", "segment-deliver"),
    "WEBHOOK_SERVICE": Declared("saasquatch_webhook's Cloud Run service", "saasquatch-webhook"),
    "FORWARD_SERVICE": Declared("forward's Cloud Run service", "segment-forward"),
    "SUBSCRIPTION": Declared(
        "the push subscription from ingest's topic to deliver",
        after="PUBSUB_TOPIC",
        suffix="-deliver",
    ),
    "DEAD_LETTER_SUBSCRIPTION": Declared(
        "the pull subscription keeping deliver's dead letters",
        after="DEAD_LETTER_TOPIC",
        suffix="-pull",
    ),
    "WEBHOOK_SUBSCRIPTION": Declared(
        "the push subscription from the webhook topic to forward",
        after="WEBHOOK_TOPIC",
        suffix="-forward",
    ),
    "WEBHOOK_DEAD_LETTER_SUBSCRIPTION": Declared(
        "the pull subscription keeping forward's dead letters",
        after="FORWARD_DEAD_LETTER_TOPIC",
        suffix="-pull",
    ),
    "ACK_DEADLINE": Declared("a push subscription's ack deadline, seconds (10-600)", "60"),
    "MAX_DELIVERY_ATTEMPTS": Declared("pushes before a message is dead-lettered (5-100)", "10"),
    "MIN_BACKOFF": Declared("a push subscription's shortest retry backoff, seconds", "10"),
    "MAX_BACKOFF": Declared("a push subscription's longest retry backoff, seconds", "600"),
    "MONITORING_RETRY_SECONDS": Declared(
        "tools.monitoring's wait before asking again for an alert policy whose new metric Cloud "
        "Monitoring does not see yet, seconds",
        "30",
    ),
}

# cloudbuild.yaml substitution -> the name whose default it spells.
BUILD_SUBSTITUTIONS: dict[str, str] = {
    # ingest
    "_TOPIC": "PUBSUB_TOPIC",
    "_ORDERING": "PUBSUB_ORDERING",
    "_MAX_BODY_BYTES": "MAX_BODY_BYTES",
    # deliver
    "_DEAD_LETTER_TOPIC": "DEAD_LETTER_TOPIC",
    "_SAASQUATCH_TENANT_ALIAS": "SAASQUATCH_TENANT_ALIAS",
    "_SAASQUATCH_BASE_URL": "SAASQUATCH_BASE_URL",
    "_DELIVERY_LEDGER": "DELIVERY_LEDGER",
    "_LEDGER_COLLECTION": "LEDGER_COLLECTION",
    "_LEDGER_DATABASE": "LEDGER_DATABASE",
    "_REMEMBER_ACCOUNTS": "REMEMBER_ACCOUNTS",
    "_ACCOUNTS_COLLECTION": "ACCOUNTS_COLLECTION",
    "_TRACK_UPSERT_STRATEGY": "TRACK_UPSERT_STRATEGY",
    "_TRACK_UPSERT_TRANSFORMER": "TRACK_UPSERT_TRANSFORMER",
    "_IDENTIFY_SEGMENTS_TRANSFORMER": "IDENTIFY_SEGMENTS_TRANSFORMER",
    "_INVALID_SEGMENTS_STRATEGY": "INVALID_SEGMENTS_STRATEGY",
    "_TRANSFORMER_TIMEOUT_MS": "TRANSFORMER_TIMEOUT_MS",
    "_INVALID_DATA_STRATEGY": "INVALID_DATA_STRATEGY",
    "_REMAP_ORDER_COMPLETED": "REMAP_ORDER_COMPLETED",
    "_EVENT_KEY_MAP": "EVENT_KEY_MAP",
    "_IGNORE_IDENTIFY": "IGNORE_IDENTIFY",
    "_HONOR_DELETE": "HONOR_DELETE",
    # saasquatch_webhook
    "_WEBHOOK_TOPIC": "WEBHOOK_TOPIC",
    "_WEBHOOK_JWKS_URL": "WEBHOOK_JWKS_URL",
    "_WEBHOOK_TENANT_ALIASES": "WEBHOOK_TENANT_ALIASES",
    "_WEBHOOK_LIVE": "WEBHOOK_LIVE",
    "_WEBHOOK_MAX_AGE_HOURS": "WEBHOOK_MAX_AGE_HOURS",
    # forward
    "_WEBHOOK_DEAD_LETTER_TOPIC": "FORWARD_DEAD_LETTER_TOPIC",
    "_SEGMENT_API_BASE_URL": "SEGMENT_API_BASE_URL",
    "_FORWARD_WEBHOOK_TYPES": "FORWARD_WEBHOOK_TYPES",
    "_FORWARD_EVENT_NAMES": "FORWARD_EVENT_NAMES",
    # every service
    "_LOG_LEVEL": "LOG_LEVEL",
    # declared
    "_INGEST_SERVICE": "INGEST_SERVICE",
    "_DELIVER_SERVICE": "DELIVER_SERVICE",
    "_WEBHOOK_SERVICE": "WEBHOOK_SERVICE",
    "_FORWARD_SERVICE": "FORWARD_SERVICE",
    "_SUBSCRIPTION": "SUBSCRIPTION",
    "_DEAD_LETTER_SUBSCRIPTION": "DEAD_LETTER_SUBSCRIPTION",
    "_WEBHOOK_SUBSCRIPTION": "WEBHOOK_SUBSCRIPTION",
    "_WEBHOOK_DEAD_LETTER_SUBSCRIPTION": "WEBHOOK_DEAD_LETTER_SUBSCRIPTION",
    "_ACK_DEADLINE": "ACK_DEADLINE",
    "_MAX_DELIVERY_ATTEMPTS": "MAX_DELIVERY_ATTEMPTS",
    "_MIN_BACKOFF": "MIN_BACKOFF",
    "_MAX_BACKOFF": "MAX_BACKOFF",
    "_MONITORING_RETRY_SECONDS": "MONITORING_RETRY_SECONDS",
}


@cache
def settings_class(target: str) -> type[ServiceSettings]:
    """The settings class of `target` (a `common.settings.ServiceSettings`), imported now."""
    module, _, name = TARGETS[target].partition(":")
    return getattr(importlib.import_module(module), name)


def readers(name: str) -> list[str]:
    """The targets whose settings have the variable `name`."""
    return [target for target in TARGETS if name in settings_class(target).model_fields]


def setting_names() -> set[str]:
    """Every variable of every service."""
    return {name for target in TARGETS for name in settings_class(target).model_fields}


def names() -> set[str]:
    """Everything `default` answers for."""
    return setting_names() | DECLARED.keys()


def default(name: str) -> str:
    """The default of `name`, as the environment would spell it: a service's variable (any
    service reading it has the same), or a declared name. KeyError for anything else."""
    return setting(name, {})


def setting(name: str, env: Mapping[str, str] = os.environ) -> str:
    """`name` as the services would have it with `env`: the variable from `env`, else its
    default. A declared name is not read from `env`; one made from a setting follows that
    setting's value in `env`."""
    declared = DECLARED.get(name)
    if declared is not None:
        return (
            declared.named_after(setting(declared.after, env)) if declared.after else declared.value
        )
    for target in TARGETS:  # imported one at a time, only as far as needed
        owner = settings_class(target)
        if name in owner.model_fields:
            return env.get(name) or owner.default(name)
    raise KeyError(f"{name} is no service's setting and not declared in tools.registry")


def derive(name: str, value: str) -> str:
    """The declared `name` for `value` of the setting it is made from: derive("SUBSCRIPTION",
    "raw") is "raw-deliver"."""
    declared = DECLARED[name]
    if not declared.after:
        raise KeyError(f"{name} is not named after a setting")
    return declared.named_after(value)
