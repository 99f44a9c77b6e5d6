"""Settings: each side reads only its own variables, and a wrong value is one line naming it."""

from __future__ import annotations

import pytest

from common.settings import ConfigError, ServiceSettings
from subscription.deliver_settings import DeliverSettings
from subscription.ingest_settings import IngestSettings

DELIVER_PROBLEMS = [
    ({"TRACK_UPSERT_STRATEGY": "sometimes"}, "TRACK_UPSERT_STRATEGY"),
    ({"TRACK_UPSERT_STRATEGY": 'event = "x" ?'}, "TRACK_UPSERT_STRATEGY: the JSONata"),
    ({"IDENTIFY_SEGMENTS_TRANSFORMER": "[traits.a"}, "IDENTIFY_SEGMENTS_TRANSFORMER: the JSONata"),
    ({"TRACK_UPSERT_TRANSFORMER": '{ "a": }'}, "TRACK_UPSERT_TRANSFORMER: the JSONata"),
    ({"INVALID_SEGMENTS_STRATEGY": "strip"}, "INVALID_SEGMENTS_STRATEGY"),
    ({"TRANSFORMER_TIMEOUT_MS": "0"}, "TRANSFORMER_TIMEOUT_MS"),
    ({"EVENT_KEY_MAP": "{not json"}, "EVENT_KEY_MAP"),
    ({"EVENT_KEY_MAP": '{"Signed Up": "bad key!"}'}, "event keys"),
    ({"SAASQUATCH_TENANT_ALIAS": "test_abc123"}, "SAASQUATCH_API_KEY"),
    ({"SAASQUATCH_BASE_URL": "app.referralsaasquatch.com"}, "SAASQUATCH_BASE_URL"),
    ({"PUSH_CERTS_URL": "ftp://certs"}, "PUSH_CERTS_URL"),
    ({"SAASQUATCH_TIMEOUT_SECONDS": "0"}, "SAASQUATCH_TIMEOUT_SECONDS"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"PUSH_AUDIENCE": "https://deliver.example"}, "PUSH_SERVICE_ACCOUNT"),
]
INGEST_PROBLEMS = [
    ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
    ({"PUBSUB_ORDERING": "sometimes"}, "PUBSUB_ORDERING"),
    ({"PUBLISH_TIMEOUT_SECONDS": "60"}, "PUBLISH_TIMEOUT_SECONDS"),
    ({}, "INGEST_TOKEN_SECRET"),  # no token: every request would be refused
    ({"INGEST_TOKEN": " , "}, "INGEST_TOKEN_SECRET"),
]
TOKEN = {"INGEST_TOKEN": "t0ken"}


def one_line(error: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith("configuration error:")
    return text


@pytest.mark.parametrize(("env", "named"), DELIVER_PROBLEMS)
def test_a_wrong_deliver_setting_is_one_line_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as error:
        DeliverSettings.from_env(env)
    assert named in one_line(error)


@pytest.mark.parametrize(("env", "named"), INGEST_PROBLEMS)
def test_a_wrong_ingest_setting_is_one_line_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as error:
        IngestSettings.from_env(env)
    assert named in one_line(error)


def test_each_side_ignores_the_other_sides_variables() -> None:
    deliver_only = {name: value for env, _ in DELIVER_PROBLEMS for name, value in env.items()}
    ingest_only = {name: value for env, _ in INGEST_PROBLEMS for name, value in env.items()}
    shared = {"LOG_LEVEL", "PUBLISH_TIMEOUT_SECONDS"}
    IngestSettings.from_env({**TOKEN, **{k: v for k, v in deliver_only.items() if k not in shared}})
    DeliverSettings.from_env({k: v for k, v in ingest_only.items() if k not in shared})
    common = set(IngestSettings.model_fields) & set(DeliverSettings.model_fields)
    assert common == set(ServiceSettings.model_fields)


def test_values_are_read_from_the_mapping_given_not_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUBSUB_TOPIC", "from-the-process")
    monkeypatch.setenv("INGEST_TOKEN", "t0ken")
    assert IngestSettings.from_env(TOKEN).PUBSUB_TOPIC == "segment-events"
    assert IngestSettings.from_env().PUBSUB_TOPIC == "from-the-process"


def test_environment_spellings_are_parsed() -> None:
    ingest = IngestSettings.from_env(
        {"PUBSUB_ORDERING": "true", "INGEST_TOKEN": " a, b ,", "MAX_BODY_BYTES": "10"}
    )
    assert (ingest.PUBSUB_ORDERING, ingest.ingest_tokens, ingest.MAX_BODY_BYTES) == (
        True,
        ["a", "b"],
        10,
    )
    deliver = DeliverSettings.from_env(
        {"EVENT_KEY_MAP": '{"Signed Up": "joined"}', "DRY_RUN": "false", "LOG_LEVEL": "debug"}
        | {"SAASQUATCH_TENANT_ALIAS": "t", "SAASQUATCH_API_KEY": "k"}
    )
    assert deliver.mapping_options.event_key_map == {"Signed Up": "joined"}
    assert (deliver.dry_run, deliver.LOG_LEVEL) == (False, "DEBUG")


def test_deliver_runs_dry_without_a_tenant() -> None:
    assert DeliverSettings.from_env({}).dry_run is True
    tenant = {"SAASQUATCH_TENANT_ALIAS": "t", "SAASQUATCH_API_KEY_SECRET": "projects/p/s/v/1"}
    assert DeliverSettings.from_env(tenant).dry_run is False
