"""`python -m stream`: preview the Segment calls for webhooks on stdin, nothing sent."""

from __future__ import annotations

import io
import json
import sys

from stream.__main__ import run
from tools.processes import ROOT

from ..support.processes import Processes

SAMPLE = ROOT / "samples" / "webhook_reward_created.json"


def preview(stdin: str, *args: str) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(io.StringIO(stdin), out, err, list(args))
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_python_dash_m_stream_previews_the_sample(processes: Processes) -> None:
    result = processes.run([sys.executable, "-m", "stream"], input=SAMPLE.read_text())
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    forwarding = json.loads(line)
    assert forwarding["outcome"] == "delivered"
    [call] = forwarding["calls"]
    assert (call["event"], call["userId"], call["messageId"]) == (
        "Reward Created",
        "user-1234",
        "saasquatch-sample-webhook-0001",
    )


def test_json_lines_and_arrays_each_webhook_on_its_line_and_bad_lines_reported() -> None:
    lines = [
        json.dumps({"id": "w1", "type": "test", "data": {}}),
        "{not json",
        json.dumps([{"id": "w2", "type": "export.created", "data": {}}]),
    ]
    code, out, err = preview("\n".join(lines))
    assert code == 1
    assert [(item["line"], item["outcome"], item["reason"]) for item in out] == [
        (1, "ignored", "test_webhook"),
        (3, "ignored", "webhook_not_forwarded"),
    ]
    assert err.startswith("line 2: invalid JSON")


def test_types_limits_what_is_forwarded_and_an_unknown_type_is_one_line() -> None:
    code, out, _ = preview(SAMPLE.read_text(), "--types", "user.created")
    assert (code, out[0]["reason"], out[0]["detail"]) == (
        0,
        "webhook_not_forwarded",
        "not in FORWARD_WEBHOOK_TYPES",
    )
    code, out, err = preview(SAMPLE.read_text(), "--types", "user.deleted")
    assert (code, out) == (2, [])
    assert err == "error: bad option: --types: user.deleted has no Segment call\n"


def test_event_names_rename_as_the_setting_does_and_a_wrong_one_is_one_line() -> None:
    hook = json.dumps({"id": "w1", "type": "referral.started", "data": {"referrerUser": "u"}})
    code, out, _ = preview(hook)
    assert (code, out[0]["calls"][0]["event"]) == (0, "Referral Created")
    code, out, _ = preview(hook, "--event-names", '{"referral.started": "Referral Started"}')
    assert (code, out[0]["calls"][0]["event"]) == (0, "Referral Started")
    code, out, err = preview(hook, "--event-names", '{"user.created": "Signed Up"}')
    assert (code, out) == (2, [])
    assert err == (
        "error: bad option: --event-names: user.created becomes an identify, "
        "which has no event name\n"
    )
    code, out, err = preview(hook, "--event-names", '{"a":' * 100_000)
    assert (code, err) == (2, "error: bad option: --event-names: nested too deeply to read\n")


def test_a_webhook_nested_too_deeply_to_read_is_one_line_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    code, out, err = preview(deep + "\n" + json.dumps({"id": "w1", "type": "test", "data": {}}))
    assert (code, err) == (1, "line 1: nested too deeply to read\n")
    assert [(item["line"], item["reason"]) for item in out] == [(2, "test_webhook")]
