"""`python -m mapper`: preview the SaaSquatch calls for JSON or JSON Lines on stdin."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass

from mapper.__main__ import run

from ..factories import PAYLOADS
from ..support.processes import Processes


@dataclass
class Preview:
    returncode: int
    stdout: str
    stderr: str


def preview(stdin: str, *args: str) -> Preview:
    """The preview run in-process, exactly as `python -m mapper` runs it."""
    out, err = io.StringIO(), io.StringIO()
    code = run(io.StringIO(stdin), out, err, ["--now", "2026-11-29T12:00:00Z", *args])
    return Preview(code, out.getvalue(), err.getvalue())


def test_python_dash_m_mapper_runs_the_preview(processes: Processes) -> None:
    result = processes.run(
        [sys.executable, "-m", "mapper", "--now", "2026-11-29T12:00:00Z"],
        input=(PAYLOADS / "order_completed.json").read_text(),
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["event_key"] == "purchase"


def test_pretty_printed_message_file_prints_one_plan() -> None:
    result = preview((PAYLOADS / "order_completed.json").read_text())
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    plan = json.loads(line)
    assert plan["outcome"] == "delivered"
    assert plan["event_key"] == "purchase"
    assert plan["calls"][0]["path"] == "/open/account/user-1234/user/user-1234/events"
    assert plan["upsert_on_missing_user"]["method"] == "PUT"


def test_json_lines_with_a_bad_line_reports_it_and_goes_on() -> None:
    lines = [
        json.dumps({"type": "identify", "userId": "u1", "traits": {"name": "Ada Lovelace"}}),
        '{"type": "track", "userId": ',
        "",
        json.dumps({"type": "page", "userId": "u1"}),
        json.dumps([{"type": "track", "userId": "u2", "event": "Signed Up"}]),
    ]
    result = preview("\n".join(lines) + "\n")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["line 2: invalid JSON (Expecting value at column 29)"]
    plans = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(p["line"], p["outcome"]) for p in plans] == [
        (1, "delivered"),
        (4, "ignored"),
        (5, "delivered"),
    ]
    assert plans[0]["calls"][0]["body"]["lastName"] == "Lovelace"
    assert plans[2]["event_key"] == "signedUp"


def test_a_line_that_is_json_but_not_a_message_shape_is_reported() -> None:
    result = preview('"just a string"\n{"type": "identify", "userId": "u"}\n')
    assert result.returncode == 1
    assert result.stderr.startswith("line 1: body must be")
    assert len(result.stdout.splitlines()) == 1


def test_options_change_the_mapping() -> None:
    message = json.dumps({"type": "track", "userId": "u", "event": "Order Completed"})
    plan = json.loads(
        preview(message, "--no-remap-order-completed", "--track-upsert-strategy", "never").stdout
    )
    assert plan["event_key"] == "orderCompleted"
    assert "upsert_on_missing_user" not in plan
    mapped = json.loads(preview(message, "--event-key-map", '{"Order Completed": "sale"}').stdout)
    assert mapped["event_key"] == "sale"


def test_a_bad_option_is_one_line_and_exit_2() -> None:
    result = preview("{}", "--event-key-map", '{"a": "not valid!"}')
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: bad option")


def test_the_transformer_flags_are_the_settings_of_deliver() -> None:
    """The documented preview of a transformer (docs/mapping.md) and the other three flags."""
    identify = (PAYLOADS / "identify_trait2.json").read_text()
    plan = json.loads(
        preview(identify, "--identify-segments-transformer", '[traits.trait2, "hardcoded"]').stdout
    )
    assert plan["calls"][0]["body"]["segments"] == ["test", "hardcoded"]
    sanitized = json.loads(
        preview(
            identify,
            "--identify-segments-transformer",
            '["VIP Tier!"]',
            "--invalid-segments-strategy",
            "sanitize",
        ).stdout
    )
    assert sanitized["calls"][0]["body"]["segments"] == ["VIPTier"]
    track = json.dumps(
        {"type": "track", "userId": "u", "event": "Order Completed", "properties": {"plan": "pro"}}
    )
    chosen = json.loads(
        preview(
            track,
            "--track-upsert-strategy",
            'event = "Order Completed" ? "ALWAYS" : "MISSING_USER"',
            "--track-upsert-transformer",
            '{ "customFields": { "plan": properties.plan } }',
        ).stdout
    )
    assert [call["purpose"] for call in chosen["calls"]] == ["upsert_user", "track_event"]
    assert chosen["calls"][0]["body"]["customFields"] == {"plan": "pro"}
    slow = json.loads(
        preview(
            track,
            "--track-upsert-strategy",
            '$count($map([1..1000000], function($v) { $v })) > 0 ? "always" : "never"',
            "--transformer-timeout-ms",
            "50",
        ).stdout
    )
    assert slow["reason"] == "transformer_failed"
    assert slow["detail"].endswith("timed out after 50 ms (JSONata D1012)")


def test_an_expression_that_does_not_parse_is_one_line_naming_the_flag() -> None:
    result = preview("{}", "--track-upsert-transformer", '{ "plan": ')
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: bad option: --track-upsert-transformer: the JSONata expression does not parse: S0"
    )
    assert len(result.stderr.strip().splitlines()) == 1
