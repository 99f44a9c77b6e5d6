"""Provisioning against the real Pub/Sub emulator: idempotent, and it repairs drift.

The emulator refuses to update a subscription's expiration policy, so putting one right is shown
by what the emulator refuses and, to the end, against a stand-in that answers as Pub/Sub does."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2, field_mask_pb2
from google.pubsub_v1 import ExpirationPolicy, Subscription, UpdateSubscriptionRequest

from tools import registry
from tools.emulator import Emulator
from tools.provision import (
    ProvisionError,
    PubSubLayout,
    dead_letter_pull_subscription,
    main,
    provision,
    push_subscription,
)

from ..factories import PROJECT

ENDPOINT = "https://deliver-abc123-uc.a.run.app/"
PUSH_ACCOUNT = "segment-push@test-project.iam.gserviceaccount.com"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/segment-events-deliver"
DEAD_LETTERS = f"projects/{PROJECT}/subscriptions/segment-events-dead-letter-pull"
PUBSUB_DEFAULT_TTL = 31 * 24 * 3600  # what Pub/Sub reads back for a subscription made without one

CLI = [
    "--project",
    PROJECT,
    "--push-endpoint",
    ENDPOINT,
    "--push-service-account",
    PUSH_ACCOUNT,
    "--max-delivery-attempts",
    "7",
]


@pytest.fixture
def subscriber(emulator: Emulator) -> pubsub_v1.SubscriberClient:
    emulator.reset()
    return pubsub_v1.SubscriberClient()


def layout(**changes) -> PubSubLayout:
    return PubSubLayout(
        project=PROJECT,
        push_endpoint=ENDPOINT,
        push_service_account=PUSH_ACCOUNT,
        max_delivery_attempts=7,
        **changes,
    )


def never_expires(subscription: Subscription) -> bool:
    """An expiration policy with no TTL: "the subscription never expires" (the Pub/Sub API)."""
    wire = Subscription.pb(subscription)
    return wire.HasField("expiration_policy") and not wire.expiration_policy.HasField("ttl")


def test_first_run_creates_everything_with_the_settings_asked_for(
    subscriber: pubsub_v1.SubscriberClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(CLI) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"projects/{PROJECT}/topics/segment-events: created",
        f"projects/{PROJECT}/topics/segment-events-dead-letter: created",
        f"projects/{PROJECT}/subscriptions/segment-events-dead-letter-pull: created",
        f"{SUBSCRIPTION}: created",
    ]
    push = subscriber.get_subscription(subscription=SUBSCRIPTION)
    assert push.topic == f"projects/{PROJECT}/topics/segment-events"
    assert push.push_config.push_endpoint == ENDPOINT
    assert push.push_config.oidc_token.service_account_email == PUSH_ACCOUNT
    assert push.push_config.oidc_token.audience == ENDPOINT
    assert push.dead_letter_policy.dead_letter_topic == (
        f"projects/{PROJECT}/topics/segment-events-dead-letter"
    )
    assert push.dead_letter_policy.max_delivery_attempts == 7
    assert push.ack_deadline_seconds == 60
    assert push.retry_policy.minimum_backoff.seconds == 10
    assert push.retry_policy.maximum_backoff.seconds == 600
    assert not push.enable_message_ordering
    pull = subscriber.get_subscription(
        subscription=f"projects/{PROJECT}/subscriptions/segment-events-dead-letter-pull"
    )
    assert pull.topic.endswith("/segment-events-dead-letter")
    assert not pull.push_config.push_endpoint
    # Idle by design, the dead-letter one would be deleted after 31 days under Pub/Sub's default.
    assert never_expires(push) and never_expires(pull)


def test_a_second_run_changes_nothing(
    subscriber: pubsub_v1.SubscriberClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(CLI) == 0
    before = subscriber.get_subscription(subscription=SUBSCRIPTION)
    capsys.readouterr()
    assert main(CLI) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"projects/{PROJECT}/topics/segment-events: exists",
        f"projects/{PROJECT}/topics/segment-events-dead-letter: exists",
        f"projects/{PROJECT}/subscriptions/segment-events-dead-letter-pull: up to date",
        f"{SUBSCRIPTION}: up to date",
    ]
    assert subscriber.get_subscription(subscription=SUBSCRIPTION) == before


def test_a_drifted_subscription_is_put_back(subscriber: pubsub_v1.SubscriberClient) -> None:
    provision(layout())
    drifted = pubsub_v1.types.Subscription(
        name=SUBSCRIPTION,
        push_config={"push_endpoint": "https://old-deliver.example/"},
        ack_deadline_seconds=10,
        dead_letter_policy={
            "dead_letter_topic": f"projects/{PROJECT}/topics/segment-events-dead-letter",
            "max_delivery_attempts": 50,
        },
    )
    subscriber.update_subscription(
        request={
            "subscription": drifted,
            "update_mask": field_mask_pb2.FieldMask(
                paths=["push_config", "ack_deadline_seconds", "dead_letter_policy"]
            ),
        }
    )
    report = dict(provision(layout()))
    assert report[SUBSCRIPTION] == (
        f"updated push endpoint (https://old-deliver.example/ -> {ENDPOINT}), "
        f"OIDC service account (none -> {PUSH_ACCOUNT}), OIDC audience (none -> {ENDPOINT}), "
        "ack deadline (10 -> 60), max delivery attempts (50 -> 7)"
    )
    current = subscriber.get_subscription(subscription=SUBSCRIPTION)
    desired = push_subscription(layout())
    assert current.push_config == desired.push_config
    assert current.ack_deadline_seconds == 60
    assert current.dead_letter_policy.max_delivery_attempts == 7


def test_what_pubsub_adds_to_a_push_config_is_not_drift(
    subscriber: pubsub_v1.SubscriberClient,
) -> None:
    """Production Pub/Sub reports a push config with attributes of its own (`x-goog-version`);
    comparing the whole config made every run rewrite the subscription."""
    provision(layout())
    desired = push_subscription(layout())
    desired.push_config.attributes["x-goog-version"] = "v1"
    subscriber.update_subscription(
        request={
            "subscription": desired,
            "update_mask": field_mask_pb2.FieldMask(paths=["push_config"]),
        }
    )
    current = subscriber.get_subscription(subscription=SUBSCRIPTION)
    assert current.push_config.attributes["x-goog-version"] == "v1"
    assert dict(provision(layout()))[SUBSCRIPTION] == "up to date"


def test_settings_changed_on_purpose_are_applied(subscriber: pubsub_v1.SubscriberClient) -> None:
    provision(layout())
    report = dict(provision(layout(retry_policy=False, ack_deadline_seconds=120)))
    assert report[SUBSCRIPTION] == (
        "updated ack deadline (60 -> 120), retry backoff (10-600 s -> none)"
    )
    current = subscriber.get_subscription(subscription=SUBSCRIPTION)
    assert current.ack_deadline_seconds == 120
    assert not current.retry_policy.maximum_backoff.seconds


def test_ordering_cannot_be_changed_in_place_and_says_what_to_do(
    subscriber: pubsub_v1.SubscriberClient, capsys: pytest.CaptureFixture[str]
) -> None:
    provision(layout())
    with pytest.raises(ProvisionError, match="cannot change that on an existing subscription"):
        provision(layout(ordering=True))
    assert main([*CLI, "--ordering"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("provision: ") and "delete it" in line
    assert not subscriber.get_subscription(subscription=SUBSCRIPTION).enable_message_ordering


def test_a_subscription_on_another_topic_is_not_hijacked(
    subscriber: pubsub_v1.SubscriberClient,
) -> None:
    pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/elsewhere")
    subscriber.create_subscription(name=SUBSCRIPTION, topic=f"projects/{PROJECT}/topics/elsewhere")
    with pytest.raises(ProvisionError, match="is attached to"):
        provision(layout())


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--ack-deadline", "5"], "--ack-deadline"),
        (["--max-delivery-attempts", "500"], "--max-delivery-attempts"),
        (["--min-backoff", "700"], "backoff"),
    ],
)
def test_out_of_range_settings_are_refused_before_any_call(
    extra: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*CLI, *extra]) == 2
    assert says in capsys.readouterr().err


def test_its_defaults_are_the_registrys() -> None:
    """Names, ack deadline, delivery attempts and backoff all come from `tools.registry`; a
    topic given names its subscriptions as the registry says."""
    bare = PubSubLayout(project=PROJECT, push_endpoint=ENDPOINT)
    assert bare.topic == registry.default("PUBSUB_TOPIC")
    assert bare.dead_letter_topic == registry.default("DEAD_LETTER_TOPIC")
    assert bare.push_subscription_name == registry.default("SUBSCRIPTION")
    assert bare.dead_letter_subscription_name == registry.default("DEAD_LETTER_SUBSCRIPTION")
    assert (
        bare.ack_deadline_seconds,
        bare.max_delivery_attempts,
        bare.min_backoff_seconds,
        bare.max_backoff_seconds,
    ) == tuple(
        int(registry.default(name))
        for name in ("ACK_DEADLINE", "MAX_DELIVERY_ATTEMPTS", "MIN_BACKOFF", "MAX_BACKOFF")
    )
    named = PubSubLayout(PROJECT, ENDPOINT, topic="raw", dead_letter_topic="dead")
    assert (named.push_subscription_name, named.dead_letter_subscription_name) == (
        "raw-deliver",
        "dead-pull",
    )


def test_the_emulator_is_asked_to_make_an_expiring_subscription_permanent(
    subscriber: pubsub_v1.SubscriberClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """A push subscription made before provisioning set the policy: everything else is as
    asked, so the update names the expiration policy alone, which the emulator (unlike Pub/Sub)
    refuses to change."""
    provision(layout())
    subscriber.delete_subscription(subscription=SUBSCRIPTION)
    made_before = push_subscription(layout())
    del made_before.expiration_policy
    subscriber.create_subscription(request=made_before)
    assert not never_expires(subscriber.get_subscription(subscription=SUBSCRIPTION))
    assert main(CLI) == 1
    assert capsys.readouterr().err.splitlines() == [
        "provision: Pub/Sub refused: Updating the expiration_policy field is currently "
        "unsupported in the Pub/Sub Emulator."
    ]


class PubSubStandIn:
    """Publisher and subscriber for subscriptions that already exist, answering as Pub/Sub does:
    a subscription made without an expiration policy reads back with a 31-day TTL, and an update
    replaces the top-level fields its mask names. Each request is kept as the client sends it."""

    def __init__(self, *subscriptions: Subscription) -> None:
        self.subscriptions = {
            s.name: Subscription.deserialize(Subscription.serialize(s)) for s in subscriptions
        }
        for stored in self.subscriptions.values():
            if "expiration_policy" not in stored:
                stored.expiration_policy = ExpirationPolicy(
                    ttl=duration_pb2.Duration(seconds=PUBSUB_DEFAULT_TTL)
                )
        self.updates: list[UpdateSubscriptionRequest] = []

    def create_topic(self, name: str) -> None:
        raise exceptions.AlreadyExists(name)

    def create_subscription(self, request: Subscription) -> None:
        raise exceptions.AlreadyExists(request.name)

    def get_subscription(self, subscription: str) -> Subscription:
        return Subscription.deserialize(Subscription.serialize(self.subscriptions[subscription]))

    def update_subscription(self, request: dict[str, Any]) -> Subscription:
        # On the wire, as the client sends it: an empty message is kept only if it was set.
        sent = UpdateSubscriptionRequest.deserialize(
            UpdateSubscriptionRequest.serialize(UpdateSubscriptionRequest(request))
        )
        self.updates.append(sent)
        stored = Subscription.pb(self.subscriptions[sent.subscription.name])
        for path in sent.update_mask.paths:
            stored.ClearField(path)
            if Subscription.pb(sent.subscription).HasField(path):
                getattr(stored, path).CopyFrom(getattr(Subscription.pb(sent.subscription), path))
        return self.get_subscription(sent.subscription.name)


def test_the_next_run_makes_subscriptions_with_the_default_expiry_permanent() -> None:
    """Both subscriptions as the build made them before it set a policy: Pub/Sub reads them back
    as expiring after 31 idle days. One run puts both right (the expiration policy alone, with no
    TTL), the next finds nothing to do."""
    before = []
    for made in (dead_letter_pull_subscription(layout()), push_subscription(layout())):
        del made.expiration_policy
        before.append(made)
    pubsub = PubSubStandIn(*before)
    report = dict(provision(layout(), publisher=pubsub, subscriber=pubsub))  # type: ignore[arg-type]
    assert (report[DEAD_LETTERS], report[SUBSCRIPTION]) == (
        "updated expiration (31 days idle -> never)",
        "updated expiration (31 days idle -> never)",
    )
    assert [update.subscription.name for update in pubsub.updates] == [DEAD_LETTERS, SUBSCRIPTION]
    for update in pubsub.updates:
        assert list(update.update_mask.paths) == ["expiration_policy"]
        assert never_expires(update.subscription)
    assert all(never_expires(s) for s in pubsub.subscriptions.values())
    report = dict(provision(layout(), publisher=pubsub, subscriber=pubsub))  # type: ignore[arg-type]
    assert (report[DEAD_LETTERS], report[SUBSCRIPTION]) == ("up to date", "up to date")
    assert len(pubsub.updates) == 2
