"""`main.py` binds the two Functions Framework targets, each from its own settings, at start."""

from __future__ import annotations

import importlib.util
import sys

import functions_framework
import pytest

from stream.forward_settings import ForwardSettings
from stream.receive_settings import WebhookSettings
from subscription.deliver_settings import DeliverSettings
from subscription.ingest_settings import IngestSettings
from tools.processes import ROOT

from .factories import envelope
from .support.processes import Processes

MAIN = str(ROOT / "main.py")
BAD_FOR_DELIVER = {"TRACK_UPSERT_STRATEGY": "sometimes"}
BAD_FOR_INGEST = {"MAX_BODY_BYTES": "-1"}


def only(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The process environment holds exactly these of our settings (and the variables the
    framework sets while loading a target are put back after the test)."""
    every = (IngestSettings, DeliverSettings, WebhookSettings, ForwardSettings)
    ours = {name for settings in every for name in settings.model_fields} - {"PUBSUB_EMULATOR_HOST"}
    for name in [*ours, "FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_importing_main_reads_no_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    only(monkeypatch, {**BAD_FOR_DELIVER, **BAD_FOR_INGEST})
    spec = importlib.util.spec_from_file_location("main_under_test", MAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # nothing raised: settings are read per target, later
    assert "ingest" not in vars(module) and "deliver" not in vars(module)


def test_ingest_is_served_and_ignores_deliver_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    only(monkeypatch, {**BAD_FOR_DELIVER, "INGEST_TOKEN": "t0ken"})
    client = functions_framework.create_app(target="ingest", source=MAIN).test_client()
    answer = client.post("/", json={"type": "identify"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="segment-saasquatch"')


def test_deliver_is_served_and_ignores_ingest_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    only(monkeypatch, BAD_FOR_INGEST)
    client = functions_framework.create_app(target="deliver", source=MAIN).test_client()
    answer = client.post("/", json=envelope({"type": "page", "userId": "u-1"}))
    assert answer.json == {"outcome": "ignored", "reason": "unsupported_type"}


def test_the_reverse_direction_is_served_from_the_same_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = {"WEBHOOK_TENANT_ALIASES": "test_tenant", "SEGMENT_WRITE_KEY": "k"}
    only(monkeypatch, {**BAD_FOR_DELIVER, **BAD_FOR_INGEST, **ours})
    webhook = functions_framework.create_app(target="saasquatch_webhook", source=MAIN)
    answer = webhook.test_client().post("/", json={"id": "w", "type": "test"})
    assert (answer.status_code, answer.json["error"]) == (
        401,
        "missing X-Hook-JWS-RFC-7797 header",
    )
    forward = functions_framework.create_app(target="forward", source=MAIN).test_client()
    pushed = forward.post("/", json=envelope({"id": "w", "type": "test", "data": {}}))
    assert pushed.json == {"outcome": "ignored", "reason": "test_webhook"}


@pytest.mark.parametrize(
    ("target", "env", "named"),
    [
        ("ingest", BAD_FOR_INGEST, "MAX_BODY_BYTES"),
        ("deliver", BAD_FOR_DELIVER, "TRACK_UPSERT"),
        ("saasquatch_webhook", {"MAX_WEBHOOK_BYTES": "0"}, "MAX_WEBHOOK_BYTES"),
        ("saasquatch_webhook", {}, "WEBHOOK_TENANT_ALIASES"),
        ("forward", {}, "SEGMENT_WRITE_KEY_SECRET"),
    ],
)
def test_a_wrong_setting_stops_the_target_at_load_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    target: str,
    env: dict[str, str],
    named: str,
) -> None:
    only(monkeypatch, env)
    with pytest.raises(SystemExit) as stopped:
        functions_framework.create_app(target=target, source=MAIN)
    assert stopped.value.code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("configuration error:") and named in line


def test_the_server_exits_at_start_on_a_wrong_setting(processes: Processes) -> None:
    """As Cloud Run starts it: `functions-framework --target=deliver`, before any request."""
    result = processes.run(
        [sys.executable, "-m", "functions_framework", "--target=deliver", "--port=1"],
        env={"PATH": "/usr/bin:/bin", **BAD_FOR_DELIVER},
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "configuration error: TRACK_UPSERT_STRATEGY: 'sometimes' names no strategy "
        "(missing_user, always, never); an expression must be more than a field name"
    ]
