"""Listing and replaying dead letters on the real Pub/Sub emulator, including a replay killed
half-way, a replay that flows through deliver to the SaaSquatch stand-in, and a dead letter of
bad data exported, corrected, backfilled through deliver and discarded. Their behaviour in
detail, on an in-memory subscription: test_dead_letter_remedies.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from google.cloud import pubsub_v1

from common.outcomes import Reason
from publisher import Publisher
from pushes.dead_letters import dead_letter_message
from tools import backfill
from tools.dead_letters import DeadLetters, list_dead_letters, main, replay
from tools.emulator import Emulator

from ..factories import PROJECT, USER, track
from ..support.pipeline import RAW_TOPIC, Pipeline
from ..support.processes import Processes
from ..support.pubsub import UNREACHABLE_PUBSUB, Topic, without_google
from ..support.saasquatch_standin import API_KEY, SaaSquatchStandIn
from ..support.served import Served

WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def topics(emulator: Emulator) -> tuple[Topic, Topic]:
    """(raw events, dead letters), each with a pull subscription."""
    emulator.reset()
    return Topic("raw-events"), Topic("dead-letters")


def dead_letter(topic: Topic, n: int, reason: Reason, status: int | None = None) -> None:
    original = {
        "type": "track",
        "userId": f"u-{n}",
        "event": "Signed Up",
        "messageId": f"dl-{n:04d}",
    }
    letter = dead_letter_message(
        json.dumps(original).encode(),
        {"type": "track", "messageId": f"dl-{n:04d}"},
        reason=reason,
        when=WHEN,
        detail=f"upsert_user: SaaSquatch answered {status}: bad key for peter@initech.com",
        status=status,
        codes=(("api_error_code", "UNAUTHORIZED"),) if status == 401 else (),
        source_message_id=str(1000 + n),
        ordering_key=f"u-{n}",
    )
    pubsub_v1.PublisherClient().publish(topic.path, letter.data, **letter.attributes).result()


def dead_lettered(letters: DeadLetters, reason: str, count: int, timeout: float = 30.0) -> bool:
    """Wait until `count` dead letters with `reason` wait on the subscription."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list_dead_letters(letters, None).get(reason, {}).get("count") == count:
            return True
        time.sleep(0.5)
    return False


def dead_lettered_for_a_wrong_key(
    pipeline: Pipeline, saasquatch_api: SaaSquatchStandIn, keys: list[str]
) -> DeadLetters:
    """Publish a track per key while deliver's API key is wrong (401), and wait until all of
    them are dead-lettered as `saasquatch_unauthorized`."""
    saasquatch_api.api_keys = {"the-key-someone-rotated"}
    saasquatch_api.add_user("u-1001", "u-1001")
    for key in keys:
        pipeline.publish(track(key), type="track", messageId=key)
    letters = DeadLetters(PROJECT, f"{pipeline.dead_letters.name}-pull")
    assert dead_lettered(letters, "saasquatch_unauthorized", len(keys))
    return letters


def remaining(topic: Topic, expected: int, timeout: float = 30.0) -> list:
    return topic.pull(expected, timeout=timeout) + topic.pull(1, timeout=2)


def test_list_groups_by_reason_with_a_sample_and_takes_nothing(
    topics: tuple[Topic, Topic], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dead = topics
    for n in range(6):
        dead_letter(dead, n, Reason.SAASQUATCH_UNAUTHORIZED, 401)
    for n in range(6, 8):
        dead_letter(dead, n, Reason.TIMESTAMP_OUT_OF_WINDOW)
    pubsub_v1.PublisherClient().publish(
        dead.path, b"{}", CloudPubSubDeadLetterSourceDeliveryCount="10"
    ).result()

    groups = list_dead_letters(DeadLetters(PROJECT, dead.subscription.split("/")[-1]), None)
    assert {reason: group["count"] for reason, group in groups.items()} == {
        "saasquatch_unauthorized": 6,
        "timestamp_out_of_window": 2,
        "delivery_attempts_exhausted": 1,
    }
    sample = groups["saasquatch_unauthorized"]["sample"]
    assert sample["attributes"]["status"] == "401"
    assert "p***@initech.com" in sample["attributes"]["detail"]
    assert '"userId": "u-' in sample["data"]

    assert main(["--project", PROJECT, "--subscription", "dead-letters-pull", "list"]) == 0
    printed = capsys.readouterr().out
    assert "      6  saasquatch_unauthorized" in printed
    assert len(remaining(dead, 9)) == 9, "listing acknowledged nothing"


def test_replay_by_reason_republishes_the_original_and_leaves_the_rest(
    topics: tuple[Topic, Topic],
) -> None:
    raw, dead = topics
    for n in range(5):
        dead_letter(dead, n, Reason.SAASQUATCH_UNAUTHORIZED, 401)
    for n in range(5, 8):
        dead_letter(dead, n, Reason.INVALID_EVENT_DATA, 400)
    summary = replay(
        DeadLetters(PROJECT, "dead-letters-pull"),
        Publisher(PROJECT, raw.name, ordering=True, timeout=30),
        reason="saasquatch_unauthorized",
    )
    assert (summary.replayed, summary.other_reason, summary.failed) == (5, 3, 0)
    assert summary.lines() == [
        "replayed 5 messages",
        "left 3 messages dead-lettered for another reason",
    ]
    replayed = remaining(raw, 5)
    assert sorted(json.loads(m.data)["messageId"] for m in replayed) == [
        f"dl-{n:04d}" for n in range(5)
    ]
    for message in replayed:
        assert dict(message.attributes) == {
            "type": "track",
            "messageId": json.loads(message.data)["messageId"],
            "origin": "replay",  # deliver looks it up in its ledger before sending it
        }
        assert message.ordering_key == json.loads(message.data)["userId"]
    left = remaining(dead, 3)
    assert sorted(m.attributes["reason"] for m in left) == ["invalid_event_data"] * 3


def test_replay_stops_at_the_limit(topics: tuple[Topic, Topic]) -> None:
    raw, dead = topics
    for n in range(6):
        dead_letter(dead, n, Reason.SAASQUATCH_REJECTED, 400)
    raw_events = Publisher(PROJECT, raw.name, ordering=False, timeout=30)
    summary = replay(DeadLetters(PROJECT, "dead-letters-pull"), raw_events, limit=4)
    assert summary.replayed == 4
    assert summary.lines()[-1] == "stopped at --limit 4: the rest stay dead-lettered"
    assert len(remaining(raw, 4)) == 4
    assert len(remaining(dead, 2)) == 2


def test_a_replay_killed_half_way_loses_nothing(
    emulator: Emulator, topics: tuple[Topic, Topic], processes: Processes
) -> None:
    raw, dead = topics
    for n in range(60):
        dead_letter(dead, n, Reason.SAASQUATCH_UNAVAILABLE, 503)
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": emulator.host}
    process = processes.start(
        [sys.executable, "-m", "tools", "dead-letters", "--project", PROJECT,
         "--subscription", "dead-letters-pull", "replay", "--topic", raw.name, "--rate", "20"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started = raw.pull(5, timeout=60)  # the replay is under way: some are republished
    os.killpg(process.pid, signal.SIGKILL)  # no chance to clean up
    process.wait(timeout=10)

    republished = {json.loads(m.data)["messageId"] for m in started + raw.pull(1, timeout=2)}
    assert 0 < len(republished) < 60, "the replay was cut half-way"
    # Pulled but not acknowledged: back after the dead-letter subscription's ack deadline (10 s).
    still_dead = {json.loads(m.data)["messageId"] for m in remaining(dead, 60 - len(republished))}
    assert republished | still_dead == {f"dl-{n:04d}" for n in range(60)}


def test_replayed_messages_flow_through_deliver_to_saasquatch(
    emulator: Emulator, deliver_server: Served, saasquatch_api: SaaSquatchStandIn
) -> None:
    pipeline = Pipeline(emulator, deliver_server.url)
    keys = [f"m-replay-{n:03d}" for n in range(5)]
    letters = dead_lettered_for_a_wrong_key(pipeline, saasquatch_api, keys)

    saasquatch_api.api_keys = {API_KEY}  # the key is fixed
    raw_events = Publisher(PROJECT, RAW_TOPIC, ordering=False, timeout=30)
    summary = replay(letters, raw_events, reason="saasquatch_unauthorized")
    assert summary.replayed == len(keys)
    assert saasquatch_api.wait_for(lambda: set(saasquatch_api.delivered_events) == set(keys))
    assert set(saasquatch_api.delivered_events.values()) == {1}
    assert list_dead_letters(letters, None) == {}


def test_replay_reasons_are_the_dead_letter_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    """`--reason` takes only what deliver can write on a dead letter (the one vocabulary)."""
    with pytest.raises(SystemExit) as refused:
        main(["--project", PROJECT, "replay", "--reason", "saasquatch_unavailable"])
    assert refused.value.code == 2
    assert "invalid choice: 'saasquatch_unavailable'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    assert "saasquatch_unauthorized" in capsys.readouterr().out


def test_a_replay_that_dead_letters_again_ends_after_one_pass(
    emulator: Emulator,
    deliver_server: Served,
    saasquatch_api: SaaSquatchStandIn,
    processes: Processes,
) -> None:
    """The key is still wrong: each replayed message is dead-lettered again, as a new message.
    Only what was dead-lettered before the replay began is replayed, so it ends, once."""
    pipeline = Pipeline(emulator, deliver_server.url)
    keys = [f"m-again-{n:03d}" for n in range(3)]
    letters = dead_lettered_for_a_wrong_key(pipeline, saasquatch_api, keys)
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": emulator.host}
    result = processes.run(
        [sys.executable, "-m", "tools", "dead-letters", "replay",
         "--project", PROJECT, "--subscription", f"{pipeline.dead_letters.name}-pull",
         "--topic", RAW_TOPIC, "--reason", "saasquatch_unauthorized"],
        env=env,
        timeout=120,  # it used to loop until interrupted
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "replayed 3 messages"
    # They fail again, and wait for the next replay: one attempt each at SaaSquatch, no loop.
    assert saasquatch_api.wait_for(
        lambda: (
            list_dead_letters(letters, None).get("saasquatch_unauthorized", {}).get("count") == 3
        )
    )
    attempts = [r for r in saasquatch_api.requests if r.path.endswith("/events")]
    assert len(attempts) == 2 * len(keys)  # the first delivery and the one replay


def test_shared_options_work_after_the_command_too(
    topics: tuple[Topic, Topic], capsys: pytest.CaptureFixture[str]
) -> None:
    _, dead = topics
    dead_letter(dead, 1, Reason.SAASQUATCH_REJECTED, 400)
    argv = ["list", "--project", PROJECT, "--subscription", "dead-letters-pull"]
    assert main(argv) == 0
    assert "      1  saasquatch_rejected" in capsys.readouterr().out


@UNREACHABLE_PUBSUB
def test_when_pubsub_cannot_be_reached_one_line_says_why_at_once(
    tmp_path, processes: Processes, env: dict[str, str], says: str
) -> None:
    for command in (["list"], ["replay", "--reason", "saasquatch_rejected"]):
        result = processes.run(
            [sys.executable, "-m", "tools", "dead-letters", *command, "--project", PROJECT],
            env=without_google(tmp_path, **env),
            timeout=30,  # it used to hang about a minute
        )
        assert result.returncode == 1
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("dead-letters: ") and says in line


def test_bad_data_is_exported_corrected_backfilled_and_only_the_exported_discarded(
    emulator: Emulator,
    deliver_server: Served,
    saasquatch_api: SaaSquatchStandIn,
    tmp_path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = Pipeline(emulator, deliver_server.url)
    saasquatch_api.add_user(USER, USER)
    subscription = f"{pipeline.dead_letters.name}-pull"
    on = ["--project", PROJECT, "--subscription", subscription]
    letters = DeadLetters(PROJECT, subscription)
    bad = track("m-fixed-1", event="")
    pipeline.publish(bad, type="track", messageId="m-fixed-1")
    dead_letter(pipeline.dead_letters, 1, Reason.SAASQUATCH_REJECTED, 400)
    assert dead_lettered(letters, "missing_event_name", 1)

    path = tmp_path / "fix.jsonl"
    assert main([*on, "export", "--reason", "missing_event_name", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"exported 1 message to {path}")
    [exported] = [json.loads(line) for line in path.read_text().splitlines()]
    assert exported == bad  # the data as published
    path.write_text(json.dumps({**exported, "event": "Signed Up"}) + "\n")  # corrected

    pipeline.publish(track("m-fixed-2", event=""), type="track", messageId="m-fixed-2")  # later
    assert dead_lettered(letters, "missing_event_name", 2)
    argv = ["--project", PROJECT, "--topic", RAW_TOPIC, "--no-ledger", str(path)]
    assert backfill.main(argv) == 0
    assert saasquatch_api.wait_for(lambda: saasquatch_api.delivered_events["m-fixed-1"] == 1)

    assert main([*on, "discard", "--exported", str(path), "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "discarded 1 message"
    groups = list_dead_letters(letters, None)
    assert {reason: group["count"] for reason, group in groups.items()} == {
        "missing_event_name": 1,
        "saasquatch_rejected": 1,
    }
    assert '"messageId": "m-fixed-2"' in groups["missing_event_name"]["sample"]["data"]


def test_a_dead_letter_of_several_megabytes_is_listed_and_exported(
    topics: tuple[Topic, Topic], tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ingest takes 8 MB bodies; gRPC's default refuses a pull answer over 4 MB."""
    _, dead = topics
    big = {"type": "track", "userId": "u-big", "messageId": "m-big", "properties": {}}
    big["properties"] = {"note": "x" * 5_000_000}
    letter = dead_letter_message(
        json.dumps(big).encode(), {"type": "track"}, reason=Reason.MISSING_EVENT_NAME, when=WHEN
    )
    pubsub_v1.PublisherClient().publish(dead.path, letter.data, **letter.attributes).result()
    dead_letter(dead, 1, Reason.SAASQUATCH_REJECTED, 400)
    on = ["--project", PROJECT, "--subscription", "dead-letters-pull"]

    assert main([*on, "list"]) == 0
    printed = capsys.readouterr().out
    assert "      1  missing_event_name" in printed and "      1  saasquatch_rejected" in printed
    path = tmp_path / "big.jsonl"
    assert main([*on, "export", "--reason", "missing_event_name", str(path)]) == 0
    assert json.loads(path.read_text()) == big


def test_a_pull_that_fails_is_an_error_never_no_dead_letters(
    topics: tuple[Topic, Topic], capsys: pytest.CaptureFixture[str]
) -> None:
    """A client with gRPC's 4 MB limit fails to pull a 5 MB dead letter: that is said, in one
    line, and not retried into an empty pull (the failed one leased the message)."""
    _, dead = topics
    pubsub_v1.PublisherClient().publish(
        dead.path, b"x" * 5_000_000, reason=str(Reason.MALFORMED_MESSAGE)
    ).result()
    small_limit = pubsub_v1.SubscriberClient()
    argv = ["--project", PROJECT, "--subscription", "dead-letters-pull", "list"]
    assert main(argv, subscriber=small_limit) == 1
    printed = capsys.readouterr()
    assert "no dead letters" not in printed.out
    [line] = printed.err.strip().splitlines()
    assert line.startswith("dead-letters: ") and "larger than max" in line
