"""`tools.registry`: it knows every service's settings and the names that are no setting, each
name once, and cloudbuild.yaml's literal copies of those defaults are held to it."""

from __future__ import annotations

import inspect
import re

import pytest
import yaml

import tools
from common.settings import ServiceSettings
from main import _TARGETS
from tools import monitoring, provision, registry
from tools.processes import ROOT

BUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
SUBSTITUTIONS = {name: str(value) for name, value in BUILD["substitutions"].items()}

# Substitutions that feed a service's variable (or are named like one) but are not copies of its
# default, and why.
NOT_MIRRORED = {
    "_DRY_RUN": "the build refuses to deploy without a tenant unless asked; deliver's default "
    "(unset) means 'dry when there is no tenant'",
    "_PUSH_AUDIENCE": "the deployment's custom audience; deliver checks none by default",
    "_FORWARD_PUSH_AUDIENCE": "the deployment's custom audience; forward checks none by default",
    "_INGEST_TOKEN_SECRET": "a secret's name; the service reads its version's full path",
    "_SAASQUATCH_API_KEY_SECRET": "a secret's name; the service reads its version's full path",
    "_SEGMENT_WRITE_KEY_SECRET": "a secret's name; the service reads its version's full path",
    "_SEGMENT_SHARED_SECRET": "a secret's name, mounted as the variable's value",
}


def declaring_classes(name: str) -> set[type]:
    """The settings classes (the four and their bases) whose own body declares `name`."""
    classes = {
        base
        for target in registry.TARGETS
        for base in registry.settings_class(target).__mro__
        if isinstance(base, type) and issubclass(base, ServiceSettings)
    }
    return {cls for cls in classes if name in inspect.get_annotations(cls)}


def test_it_knows_the_four_targets_and_their_settings_classes() -> None:
    assert list(registry.TARGETS) == list(_TARGETS)
    for target in registry.TARGETS:
        assert issubclass(registry.settings_class(target), ServiceSettings)


def test_setting_answers_for_every_service() -> None:
    assert tools.setting("WEBHOOK_TOPIC", {}) == "saasquatch-webhooks"
    assert tools.setting("FORWARD_DEAD_LETTER_TOPIC", {}) == "saasquatch-webhooks-dead-letter"
    assert tools.setting("PUBSUB_TOPIC", {}) == "segment-events"
    assert tools.setting("DEAD_LETTER_TOPIC", {}) == "segment-events-dead-letter"
    assert tools.setting("LEDGER_COLLECTION", {}) == "segment_saasquatch_deliveries"
    assert tools.setting("WEBHOOK_TOPIC", {"WEBHOOK_TOPIC": "hooks"}) == "hooks"
    assert tools.setting("WEBHOOK_TOPIC", {"WEBHOOK_TOPIC": ""}) == "saasquatch-webhooks"
    with pytest.raises(KeyError, match="WEBHOOK_TOPICS"):
        tools.setting("WEBHOOK_TOPICS", {})


def test_every_variable_of_every_service_has_its_services_default() -> None:
    for target in registry.TARGETS:
        settings = registry.settings_class(target)
        for name in settings.model_fields:
            assert registry.default(name) == settings.default(name), (target, name)
            assert target in registry.readers(name)
    assert registry.setting_names() <= registry.names()


def test_every_variable_is_declared_by_exactly_one_settings_class() -> None:
    """So a variable read by several services (LOG_LEVEL, PUSH_AUDIENCE) has one default."""
    for name in sorted(registry.setting_names()):
        assert len(declaring_classes(name)) == 1, (name, declaring_classes(name))


def test_declared_names_are_no_setting_and_those_made_from_one_follow_it() -> None:
    assert not registry.DECLARED.keys() & registry.setting_names()
    for name, declared in registry.DECLARED.items():
        assert declared.about
        if declared.after:
            assert not declared.value, name
            assert declared.suffix.startswith("-"), name
            assert len(declaring_classes(declared.after)) == 1, name
            assert registry.default(name) == registry.default(declared.after) + declared.suffix
            env = {declared.after: "custom"}
            assert registry.setting(name, env) == registry.derive(name, "custom")
            assert registry.derive(name, "custom") == "custom" + declared.suffix
        else:
            assert declared.value and not declared.suffix, name
            assert registry.setting(name, {name: "ignored"}) == declared.value
            with pytest.raises(KeyError):
                registry.derive(name, "custom")
    assert tools.setting("DEAD_LETTER_SUBSCRIPTION", {}) == "segment-events-dead-letter-pull"
    assert tools.setting("WEBHOOK_SUBSCRIPTION", {}) == "saasquatch-webhooks-forward"


def test_every_name_the_registry_lists_is_one_settings_or_declared() -> None:
    listed = set(registry.BUILD_SUBSTITUTIONS.values()) | {
        declared.after for declared in registry.DECLARED.values() if declared.after
    }
    for name in sorted(listed):
        owners = declaring_classes(name)
        if name in registry.DECLARED:
            assert not owners, (name, owners)
        else:
            assert len(owners) == 1, (name, owners)


def test_the_builds_substitutions_spell_the_registrys_defaults() -> None:
    for substitution, name in registry.BUILD_SUBSTITUTIONS.items():
        assert substitution in SUBSTITUTIONS, substitution
        assert SUBSTITUTIONS[substitution] == registry.default(name), (substitution, name)


def env_var_pairs() -> set[tuple[str, str]]:
    """(variable, substitution) for every `VARIABLE=${_SUBSTITUTION}` a deploy sets as is."""
    pairs = set()
    for step in BUILD["steps"]:
        for value in re.findall(r'--set-env-vars "\^\|\^([^"]*)"', step["script"]):
            for pair in value.split("|"):
                found = re.fullmatch(r"(\w+)=\$\{(_\w+)\}", pair)
                if found:
                    pairs.add((found.group(1), found.group(2)))
    return pairs


def test_no_substitution_copies_a_default_the_registry_does_not_hold() -> None:
    """A new substitution for a service's variable or a declared name is either held to the
    registry (BUILD_SUBSTITUTIONS) or listed above with why it differs."""
    settings = registry.setting_names()
    pairs = env_var_pairs()
    assert ("PUBSUB_TOPIC", "_TOPIC") in pairs  # the parsing finds what it should
    for variable, substitution in pairs:
        if variable in settings and substitution not in NOT_MIRRORED:
            assert registry.BUILD_SUBSTITUTIONS.get(substitution) == variable, substitution
    for substitution in SUBSTITUTIONS:
        if substitution.removeprefix("_") in registry.names():
            assert substitution in registry.BUILD_SUBSTITUTIONS.keys() | NOT_MIRRORED.keys()
    assert NOT_MIRRORED.keys() <= SUBSTITUTIONS.keys()
    assert not NOT_MIRRORED.keys() & registry.BUILD_SUBSTITUTIONS.keys()


def test_the_tools_default_to_what_the_build_passes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PUBSUB_TOPIC", "DEAD_LETTER_TOPIC", "PUBSUB_ORDERING"):
        monkeypatch.delenv(name, raising=False)
    args = provision._parser().parse_args(["--project", "p", "--push-endpoint", "https://d/"])
    layout = provision.layout_from_args(args)
    assert (
        layout.topic,
        layout.dead_letter_topic,
        layout.push_subscription_name,
        layout.dead_letter_subscription_name,
        str(layout.ordering).lower(),
        str(layout.ack_deadline_seconds),
        str(layout.max_delivery_attempts),
        str(layout.min_backoff_seconds),
        str(layout.max_backoff_seconds),
    ) == tuple(
        SUBSTITUTIONS[name]
        for name in (
            "_TOPIC",
            "_DEAD_LETTER_TOPIC",
            "_SUBSCRIPTION",
            "_DEAD_LETTER_SUBSCRIPTION",
            "_ORDERING",
            "_ACK_DEADLINE",
            "_MAX_DELIVERY_ATTEMPTS",
            "_MIN_BACKOFF",
            "_MAX_BACKOFF",
        )
    )
    watched = vars(monitoring._parser().parse_args(["--project", "p"]))
    for option in (
        "ingest_service",
        "deliver_service",
        "subscription",
        "dead_letter_subscription",
        "webhook_service",
        "forward_service",
        "webhook_subscription",
        "webhook_dead_letter_subscription",
    ):
        assert watched[option] == SUBSTITUTIONS[f"_{option.upper()}"], option
