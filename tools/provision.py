"""Create or update the Pub/Sub side of the pipeline, idempotently.

    python -m tools.provision --project P --push-endpoint https://deliver-....run.app/ \\
        --push-service-account segment-push@P.iam.gserviceaccount.com

Makes sure these exist with these settings, and changes what drifted:
- the raw-events topic (`--topic`), which ingest publishes to;
- the dead-letter topic (`--dead-letter-topic`), and a pull subscription on it (`--dead-letter-
  subscription`), without which dead letters would be dropped by Pub/Sub, since a topic keeps
  nothing by itself;
- the push subscription (`--subscription`) to deliver: push endpoint, OIDC service account and
  audience, ack deadline, dead-letter policy, retry policy and message ordering.

Every subscription is made never to expire. Pub/Sub's default deletes one after 31 days without
subscriber activity, and the dead-letter pull subscription is idle by design: once it is gone,
later dead letters are dropped and the alert on them says nothing. A subscription made with the
default is put right on the next run, like any other drift.

Message ordering cannot be changed on an existing subscription (Pub/Sub refuses): provisioning stops
with a message saying so rather than deleting a subscription that may hold undelivered events.
With `PUBSUB_EMULATOR_HOST` set, everything goes to the emulator. IAM bindings are not made here
(the emulator has no IAM); `cloudbuild.yaml` makes them with gcloud. The emulator keeps the
expiration policy a subscription is created with but refuses to update one ("currently unsupported
in the Pub/Sub Emulator"), so there a subscription made without it cannot be put right. Every
default (names, ack deadline, delivery attempts, backoff) is `tools.registry`'s.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
from google.api_core import exceptions
from google.protobuf import duration_pb2, field_mask_pb2
from google.pubsub_v1 import ExpirationPolicy, RetryPolicy, Subscription

from tools import add_project_argument, add_raw_events_arguments, registry, setting


@dataclass(frozen=True)
class Setting:
    """One value provisioning sets on a subscription: its name in reports, the top-level field
    an update replaces, and how to read it."""

    name: str
    field: str
    read: Callable[[Subscription], Any]


def _expiry(subscription: Subscription) -> str:
    """When Pub/Sub deletes the subscription for lack of subscriber activity. An expiration
    policy with no TTL means never; none at all, Pub/Sub's default (read back as 31 days)."""
    if "expiration_policy" not in subscription:
        return "default"
    if "ttl" not in subscription.expiration_policy:
        return "never"
    seconds = _seconds(subscription.expiration_policy.ttl)
    return f"{seconds // 86400} days idle" if seconds % 86400 == 0 else f"{seconds} s idle"


ACK_DEADLINE = Setting("ack deadline", "ack_deadline_seconds", lambda s: s.ack_deadline_seconds)
EXPIRY = Setting("expiration", "expiration_policy", _expiry)

# What provisioning sets on the push subscription, each compared on its own: Pub/Sub fills in
# values of its own (a push config's `x-goog-version` attribute, for one), which are not drift
# and must not make every run rewrite the subscription. Anything else is left as it is.
PUSH_SETTINGS = (
    Setting("push endpoint", "push_config", lambda s: s.push_config.push_endpoint),
    Setting(
        "OIDC service account",
        "push_config",
        lambda s: s.push_config.oidc_token.service_account_email,
    ),
    Setting("OIDC audience", "push_config", lambda s: s.push_config.oidc_token.audience),
    ACK_DEADLINE,
    Setting(
        "dead-letter topic", "dead_letter_policy", lambda s: s.dead_letter_policy.dead_letter_topic
    ),
    Setting(
        "max delivery attempts",
        "dead_letter_policy",
        lambda s: s.dead_letter_policy.max_delivery_attempts,
    ),
    Setting(
        "retry backoff",
        "retry_policy",
        lambda s: _backoff(s.retry_policy.minimum_backoff, s.retry_policy.maximum_backoff),
    ),
    Setting("message ordering", "enable_message_ordering", lambda s: s.enable_message_ordering),
    EXPIRY,
)
DEAD_LETTER_SETTINGS = (ACK_DEADLINE, EXPIRY)


def _backoff(minimum: Any, maximum: Any) -> str:
    if not (minimum or maximum):
        return "none"
    return f"{_seconds(minimum)}-{_seconds(maximum)} s"


def _seconds(duration: Any) -> int:
    # proto-plus gives a timedelta, raw protobuf a Duration
    return int(duration.total_seconds()) if hasattr(duration, "total_seconds") else duration.seconds


class ProvisionError(Exception):
    """Something provisioning must not fix on its own; the message says what to do."""


def _number(name: str) -> int:
    return int(registry.default(name))


def _name_field(name: str) -> Any:
    """A field defaulting to the registry's default for `name`, read when a layout is made."""
    return field(default_factory=lambda: registry.default(name))


def _number_field(name: str) -> Any:
    return field(default_factory=lambda: _number(name))


@dataclass(frozen=True)
class PubSubLayout:
    project: str
    push_endpoint: str
    topic: str = _name_field("PUBSUB_TOPIC")
    dead_letter_topic: str = _name_field("DEAD_LETTER_TOPIC")
    subscription: str = ""  # default: the registry's SUBSCRIPTION for `topic`
    dead_letter_subscription: str = ""  # default: its DEAD_LETTER_SUBSCRIPTION for the topic
    push_service_account: str = ""
    audience: str = ""
    ordering: bool = False
    ack_deadline_seconds: int = _number_field("ACK_DEADLINE")
    max_delivery_attempts: int = _number_field("MAX_DELIVERY_ATTEMPTS")
    retry_policy: bool = True
    min_backoff_seconds: int = _number_field("MIN_BACKOFF")
    max_backoff_seconds: int = _number_field("MAX_BACKOFF")

    @property
    def push_subscription_name(self) -> str:
        return self.subscription or registry.derive("SUBSCRIPTION", self.topic)

    @property
    def dead_letter_subscription_name(self) -> str:
        return self.dead_letter_subscription or registry.derive(
            "DEAD_LETTER_SUBSCRIPTION", self.dead_letter_topic
        )

    def topic_path(self, name: str) -> str:
        return f"projects/{self.project}/topics/{name}"

    def subscription_path(self, name: str) -> str:
        return f"projects/{self.project}/subscriptions/{name}"


def push_subscription(layout: PubSubLayout) -> Subscription:
    """The push subscription as it should be."""
    push_config: dict = {"push_endpoint": layout.push_endpoint}
    if layout.push_service_account:
        push_config["oidc_token"] = {
            "service_account_email": layout.push_service_account,
            "audience": layout.audience or layout.push_endpoint,
        }
    subscription = Subscription(
        name=layout.subscription_path(layout.push_subscription_name),
        topic=layout.topic_path(layout.topic),
        push_config=push_config,
        ack_deadline_seconds=layout.ack_deadline_seconds,
        enable_message_ordering=layout.ordering,
        # "If expiration_policy is set, but expiration_policy.ttl is not set, the subscription
        # never expires" (the Pub/Sub API).
        expiration_policy=ExpirationPolicy(),
        dead_letter_policy={
            "dead_letter_topic": layout.topic_path(layout.dead_letter_topic),
            "max_delivery_attempts": layout.max_delivery_attempts,
        },
    )
    if layout.retry_policy:
        subscription.retry_policy = RetryPolicy(
            minimum_backoff=duration_pb2.Duration(seconds=layout.min_backoff_seconds),
            maximum_backoff=duration_pb2.Duration(seconds=layout.max_backoff_seconds),
        )
    return subscription


def dead_letter_pull_subscription(layout: PubSubLayout) -> Subscription:
    """Keeps dead letters for 7 days, for `tools.dead_letters` and for people."""
    return Subscription(
        name=layout.subscription_path(layout.dead_letter_subscription_name),
        topic=layout.topic_path(layout.dead_letter_topic),
        ack_deadline_seconds=60,
        message_retention_duration=duration_pb2.Duration(seconds=7 * 24 * 3600),
        expiration_policy=ExpirationPolicy(),  # never expires: idle is what it is for
    )


def drifted(
    current: Subscription, desired: Subscription, settings: Sequence[Setting]
) -> list[tuple[Setting, Any, Any]]:
    """(setting, current value, desired value) for each setting that differs."""
    return [
        (setting, setting.read(current), setting.read(desired))
        for setting in settings
        if setting.read(current) != setting.read(desired)
    ]


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if value not in ("", None) else "none"


def ensure_topic(publisher: pubsub_v1.PublisherClient, path: str) -> str:
    try:
        publisher.create_topic(name=path)
        return "created"
    except exceptions.AlreadyExists:
        return "exists"


def ensure_subscription(
    subscriber: pubsub_v1.SubscriberClient, desired: Subscription, settings: Sequence[Setting]
) -> str:
    try:
        subscriber.create_subscription(request=desired)
        return "created"
    except exceptions.AlreadyExists:
        pass
    current = subscriber.get_subscription(subscription=desired.name)
    if current.topic != desired.topic:
        raise ProvisionError(
            f"{desired.name} is attached to {current.topic}, not {desired.topic}: "
            "delete it or choose another subscription name"
        )
    changed = drifted(current, desired, settings)
    fields = list(dict.fromkeys(setting.field for setting, _, _ in changed))
    if "enable_message_ordering" in fields:
        want = "on" if desired.enable_message_ordering else "off"
        raise ProvisionError(
            f"{desired.name} has message ordering "
            f"{'on' if current.enable_message_ordering else 'off'}; it should be {want}, and "
            "Pub/Sub cannot change that on an existing subscription: let it drain, delete it "
            "(gcloud pubsub subscriptions delete ...), then provision again"
        )
    if not changed:
        return "up to date"
    subscriber.update_subscription(
        request={"subscription": desired, "update_mask": field_mask_pb2.FieldMask(paths=fields)}
    )
    return "updated " + ", ".join(
        f"{setting.name} ({_shown(was)} -> {_shown(now)})" for setting, was, now in changed
    )


def provision(
    layout: PubSubLayout,
    publisher: pubsub_v1.PublisherClient | None = None,
    subscriber: pubsub_v1.SubscriberClient | None = None,
) -> list[tuple[str, str]]:
    """(resource, what happened) for each resource, in the order they were handled."""
    publisher = publisher or pubsub_v1.PublisherClient()
    subscriber = subscriber or pubsub_v1.SubscriberClient()
    report = []
    for topic in (layout.topic, layout.dead_letter_topic):
        path = layout.topic_path(topic)
        report.append((path, ensure_topic(publisher, path)))
    dead_letters = dead_letter_pull_subscription(layout)
    report.append(
        (
            dead_letters.name,
            ensure_subscription(subscriber, dead_letters, DEAD_LETTER_SETTINGS),
        )
    )
    push = push_subscription(layout)
    report.append((push.name, ensure_subscription(subscriber, push, PUSH_SETTINGS)))
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.provision",
        description="Create or update the Pub/Sub topics and subscriptions of segment-saasquatch.",
    )
    add_project_argument(parser)
    parser.add_argument("--push-endpoint", required=True, help="deliver's URL")
    add_raw_events_arguments(parser, "message ordering (must match ingest's PUBSUB_ORDERING)")
    parser.add_argument("--dead-letter-topic", default=setting("DEAD_LETTER_TOPIC"))
    push = registry.DECLARED["SUBSCRIPTION"].suffix
    pull = registry.DECLARED["DEAD_LETTER_SUBSCRIPTION"].suffix
    parser.add_argument("--subscription", default="", help=f"default: TOPIC{push}")
    parser.add_argument(
        "--dead-letter-subscription", default="", help=f"default: DEAD_LETTER_TOPIC{pull}"
    )
    parser.add_argument(
        "--push-service-account", default="", help="sign pushes with an OIDC token for this account"
    )
    parser.add_argument("--audience", default="", help="OIDC audience (default: the endpoint)")
    parser.add_argument(
        "--ack-deadline", type=int, default=_number("ACK_DEADLINE"), help="seconds (10-600)"
    )
    parser.add_argument(
        "--max-delivery-attempts", type=int, default=_number("MAX_DELIVERY_ATTEMPTS"), help="5-100"
    )
    parser.add_argument(
        "--retry-policy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="exponential backoff between --min-backoff and --max-backoff",
    )
    parser.add_argument(
        "--min-backoff", type=int, default=_number("MIN_BACKOFF"), help="seconds (0-600)"
    )
    parser.add_argument(
        "--max-backoff", type=int, default=_number("MAX_BACKOFF"), help="seconds (0-600)"
    )
    return parser


def layout_from_args(args: argparse.Namespace) -> PubSubLayout:
    if not args.project:
        raise ProvisionError("--project (or GOOGLE_CLOUD_PROJECT) is required")
    if not 10 <= args.ack_deadline <= 600:
        raise ProvisionError("--ack-deadline must be between 10 and 600 seconds")
    if not 5 <= args.max_delivery_attempts <= 100:
        raise ProvisionError("--max-delivery-attempts must be between 5 and 100")
    if not 0 <= args.min_backoff <= args.max_backoff <= 600:
        raise ProvisionError("backoff must satisfy 0 <= --min-backoff <= --max-backoff <= 600")
    return PubSubLayout(
        project=args.project,
        push_endpoint=args.push_endpoint,
        topic=args.topic,
        dead_letter_topic=args.dead_letter_topic,
        subscription=args.subscription,
        dead_letter_subscription=args.dead_letter_subscription,
        push_service_account=args.push_service_account,
        audience=args.audience,
        ordering=args.ordering,
        ack_deadline_seconds=args.ack_deadline,
        max_delivery_attempts=args.max_delivery_attempts,
        retry_policy=args.retry_policy,
        min_backoff_seconds=args.min_backoff,
        max_backoff_seconds=args.max_backoff,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        for resource, outcome in provision(layout_from_args(args)):
            print(f"{resource}: {outcome}")
    except ProvisionError as error:
        print(f"provision: {error}", file=sys.stderr)
        return 2
    except exceptions.GoogleAPICallError as error:
        print(f"provision: Pub/Sub refused: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
