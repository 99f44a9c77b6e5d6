"""What an operator can do about each dead letter, on an in-memory subscription that behaves as
Pub/Sub's: export the data's own faults for correction (changing nothing), discard exactly what
is asked, and a replay that refuses what it cannot fix instead of looping. The same flow on the
real emulator, through deliver, is in test_dead_letters.py."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.outcomes import Outcome, Reason, reasons_for
from common.remedies import REMEDIES, Remedy
from pushes.dead_letters import dead_letter_message
from tools import backfill
from tools.dead_letters import (
    Chosen,
    DeadLetters,
    discard,
    export,
    list_dead_letters,
    main,
    replay,
    sidecar_of,
)
from tools.ledger import ledger_check
from tools.processes import ROOT

from ..factories import PROJECT
from ..support.fake_subscription import SUBSCRIPTION, FakeSubscription
from ..support.fakes import FakeTopic

BEFORE = datetime.now(UTC) - timedelta(hours=1)
ON = ["--project", PROJECT, "--subscription", SUBSCRIPTION]


def letter(
    subscription: FakeSubscription,
    message_id: str,
    reason: Reason,
    data: bytes | None = None,
    **attributes: str,
) -> str:
    """A dead letter as deliver writes it (published an hour ago unless `attributes` is for a
    later arrival); the Pub/Sub id it got."""
    original = {"type": "track", "userId": "u-1", "messageId": message_id, "properties": {}}
    if reason is not Reason.MISSING_EVENT_NAME:
        original["event"] = "Signed Up"
    outgoing = dead_letter_message(
        json.dumps(original).encode() if data is None else data,
        {"type": "track", "messageId": message_id, **attributes},
        reason=reason,
        when=BEFORE,
        detail=f"{reason} for peter@initech.com",
        source_message_id=f"src-{message_id}",
    )
    return subscription.publish(outgoing.data, outgoing.attributes, publish_time=BEFORE)


def arriving(subscription: FakeSubscription, reason: Reason, message_id: str) -> None:
    """On the next pull (the first of the next command), a dead letter arrives (published
    now, by the real clock)."""
    armed = subscription.pulls + 1

    def arrive(fake: FakeSubscription) -> None:
        if fake.pulls == armed:
            outgoing = dead_letter_message(
                json.dumps({"type": "track", "userId": "u-9", "messageId": message_id}).encode(),
                {"type": "track", "messageId": message_id},
                reason=reason,
                when=datetime.now(UTC),
            )
            fake.publish(outgoing.data, outgoing.attributes)

    subscription.on_pull = arrive


def reasons_waiting(subscription: FakeSubscription) -> list[tuple[str, str]]:
    return sorted(
        (message.attributes["reason"], message.attributes["messageId"])
        for message in subscription.waiting()
    )


def all_pullable(subscription: FakeSubscription) -> bool:
    """Nothing is left outstanding: a pull right now gets every waiting message."""
    subscription.on_pull = None
    pulled = subscription.pull(subscription=subscription.path, max_messages=1000)
    for received in pulled.received_messages:  # hand them back again
        subscription.modify_ack_deadline(
            subscription=subscription.path, ack_ids=[received.ack_id], ack_deadline_seconds=0
        )
    return len(pulled.received_messages) == len(subscription.waiting())


@pytest.fixture
def subscription() -> FakeSubscription:
    return FakeSubscription()


@pytest.fixture
def letters(subscription: FakeSubscription) -> DeadLetters:
    return DeadLetters(PROJECT, SUBSCRIPTION, subscriber=subscription)


# --- the remedy table ----------------------------------------------------------------------------


def reason_rows() -> list[list[str]]:
    """The cells of each row of the reasons table (after its header and rule)."""
    text = (ROOT / "docs" / "operations" / "reasons.md").read_text()
    table = text.split("| reason | outcome |", 1)[1].split("\n\n", 1)[0]
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in table.splitlines()[2:]
    ]


def test_every_dead_letter_reason_has_a_remedy_and_its_row_says_it_first() -> None:
    assert set(REMEDIES) == set(reasons_for(Outcome.DEAD_LETTERED))
    rows = reason_rows()
    assert len(rows) == len(Reason)
    assert all(len(cells) == 4 for cells in rows), "every row has a what-to-do cell"
    to_do = {reason.strip("`"): cells[-1] for reason, *cells in rows}
    for reason in Reason:
        assert to_do[reason].strip(), f"{reason}: what to do is empty"
    for reason, remedy in REMEDIES.items():
        assert to_do[reason].startswith(f"**{remedy}**"), f"{reason} is {remedy} in the code"


# --- export --------------------------------------------------------------------------------------


def test_export_writes_the_data_for_backfill_with_why_beside_it_and_takes_nothing(
    subscription: FakeSubscription, letters: DeadLetters, tmp_path: Path
) -> None:
    first = letter(subscription, "m-1", Reason.MISSING_EVENT_NAME)
    letter(subscription, "m-2", Reason.SAASQUATCH_UNAUTHORIZED)
    second = letter(subscription, "m-3", Reason.MISSING_EVENT_NAME)
    letter(subscription, "m-4", Reason.MISSING_EVENT_NAME, data=b'{"type": "track", "x": NaN}')
    letter(subscription, "m-5", Reason.MISSING_EVENT_NAME, data=b'["an array"]')
    letter(subscription, "m-6", Reason.MISSING_EVENT_NAME, webhookType="reward.created")
    data = {m.message_id: m.data for m in subscription.waiting()}
    before = [(m.message_id, m.data, m.attributes) for m in subscription.waiting()]
    path = tmp_path / "fix.jsonl"

    summary = export(letters, "missing_event_name", path)

    assert (summary.exported, summary.not_json, summary.webhooks, summary.other_reason) == (
        2, 2, 1, 1,
    )  # fmt: skip
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert [message["messageId"] for message in written] == ["m-1", "m-3"]
    assert all("reason" not in message and "event" not in message for message in written)
    beside = [json.loads(line) for line in sidecar_of(path).read_text().splitlines()]
    assert beside == [
        {
            "line": n,
            "reason": "missing_event_name",
            "detail": "missing_event_name for peter@initech.com",
            "messageId": message_id,
            "sha256": hashlib.sha256(data[pubsub_id]).hexdigest(),
            "deadLetterId": pubsub_id,
            "deadLetteredAt": BEFORE.isoformat(timespec="milliseconds"),
        }
        for n, message_id, pubsub_id in [(1, "m-1", first), (2, "m-3", second)]
    ]
    assert [(m.message_id, m.data, m.attributes) for m in subscription.waiting()] == before
    assert all_pullable(subscription), "export handed every message straight back"
    assert summary.lines()[1:4] == [
        "left out 2 messages whose data is not a JSON object: no line for backfill can hold it "
        "(`dead-letters list` shows a sample)",
        "left out 1 message that is a webhook (forward's dead letters, not Segment messages: "
        "backfill would send them the wrong way); replay them onto the webhook topic or "
        "discard them",
        "left out 1 message dead-lettered for another reason",
    ]


def test_an_exported_file_corrected_is_what_backfill_publishes(
    subscription: FakeSubscription, letters: DeadLetters, tmp_path: Path
) -> None:
    for n in range(3):
        letter(subscription, f"m-{n}", Reason.MISSING_EVENT_NAME)
    path = tmp_path / "fix.jsonl"
    export(letters, "missing_event_name", path)
    corrected = [
        json.dumps({**json.loads(line), "event": "Signed Up"})
        for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(corrected) + "\n")

    topic = FakeTopic("raw-events")
    assert backfill.main(["--project", PROJECT, "--no-ledger", str(path)], topic=topic) == 0
    published = [json.loads(message.data) for message in topic.pull()]
    assert [(m["messageId"], m["event"]) for m in published] == [
        (f"m-{n}", "Signed Up") for n in range(3)
    ]


def test_a_message_that_comes_back_during_an_export_is_written_once(
    subscription: FakeSubscription, letters: DeadLetters, tmp_path: Path
) -> None:
    """The ack deadline passes half-way: Pub/Sub hands the first messages out again."""
    for n in range(250):
        letter(subscription, f"m-{n:03d}", Reason.TIMESTAMP_OUT_OF_WINDOW)

    def slow(fake: FakeSubscription) -> None:
        fake.advance(fake.ack_deadline_seconds if fake.pulls == 3 else 0)

    subscription.on_pull = slow
    summary = export(letters, "timestamp_out_of_window", tmp_path / "old.jsonl")
    assert summary.exported == 250
    ids = [json.loads(line)["messageId"] for line in (tmp_path / "old.jsonl").open()]
    assert sorted(ids) == [f"m-{n:03d}" for n in range(250)]
    assert all_pullable(subscription)


def test_export_refuses_to_overwrite_and_writes_nothing_when_nothing_matches(
    subscription: FakeSubscription, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fix.jsonl"
    path.write_text("corrected by hand\n")
    argv = [*ON, "export", "--reason", "missing_event_name", str(path)]
    assert main(argv, subscriber=subscription) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"dead-letters: {path} exists: export writes new files (give another FILE)"
    ]
    assert path.read_text() == "corrected by hand\n"
    assert subscription.pulls == 0

    letter(subscription, "m-1", Reason.SAASQUATCH_REJECTED)
    other = tmp_path / "none.jsonl"
    assert (
        main([*ON, "export", "--reason", "missing_event_name", str(other)], subscriber=subscription)
        == 0
    )
    assert capsys.readouterr().out.splitlines()[0] == "exported 0 messages: no file written"
    assert list(tmp_path.iterdir()) == [path]


# --- discard -------------------------------------------------------------------------------------


def test_discard_of_an_export_removes_exactly_what_was_exported(
    subscription: FakeSubscription, letters: DeadLetters, tmp_path: Path
) -> None:
    letter(subscription, "m-1", Reason.MISSING_EVENT_NAME)
    letter(subscription, "m-2", Reason.MISSING_EVENT_NAME)
    letter(subscription, "m-3", Reason.SAASQUATCH_UNAUTHORIZED)
    path = tmp_path / "fix.jsonl"
    export(letters, "missing_event_name", path)
    letter(subscription, "m-4", Reason.MISSING_EVENT_NAME)  # dead-lettered after the export
    arriving(subscription, Reason.MISSING_EVENT_NAME, "m-5")  # ... and during the discard

    argv = [*ON, "discard", "--exported", str(path), "--yes"]
    assert main(argv, subscriber=subscription) == 0
    assert reasons_waiting(subscription) == [
        ("missing_event_name", "m-4"),
        ("missing_event_name", "m-5"),
        ("saasquatch_unauthorized", "m-3"),
    ]
    assert all_pullable(subscription)


def test_discard_of_an_export_after_a_restart_removes_exactly_what_was_exported(
    subscription: FakeSubscription, letters: DeadLetters, tmp_path: Path
) -> None:
    """Pub/Sub ids do not survive a republish: make run's restore republishes the dead letters
    with new ids, and the emulator numbers from 1 on every start, so a dead letter made before
    the restore takes an id the export wrote. Discard goes by the data and the reason."""
    letter(subscription, "m-1", Reason.MISSING_EVENT_NAME)
    letter(subscription, "m-2", Reason.SAASQUATCH_UNAUTHORIZED)
    letter(subscription, "m-3", Reason.MISSING_EVENT_NAME)
    path = tmp_path / "fix.jsonl"
    export(letters, "missing_event_name", path)
    exported_ids = [json.loads(line)["deadLetterId"] for line in sidecar_of(path).open()]

    saved = subscription.restart()
    letter(subscription, "m-new", Reason.MISSING_EVENT_NAME)  # the new run's first dead letter
    for message in saved:  # the restore
        subscription.publish(message.data, message.attributes, publish_time=message.publish_time)
    [copy] = [m for m in saved if b'"m-3"' in m.data]  # m-3, dead-lettered again as it was
    subscription.publish(copy.data, copy.attributes, publish_time=copy.publish_time)
    now = {json.loads(m.data)["messageId"]: m.message_id for m in subscription.waiting()}
    assert now["m-new"] in exported_ids, "a message nobody exported has an exported id"

    argv = [*ON, "discard", "--exported", str(path), "--yes"]
    assert main(argv, subscriber=subscription) == 0
    assert reasons_waiting(subscription) == [
        ("missing_event_name", "m-3"),  # the second copy: the export wrote one
        ("missing_event_name", "m-new"),
        ("saasquatch_unauthorized", "m-2"),
    ]
    assert all_pullable(subscription)


def test_discard_by_reason_leaves_other_reasons_and_what_arrives_meanwhile(
    subscription: FakeSubscription, letters: DeadLetters
) -> None:
    for n in range(3):
        letter(subscription, f"m-{n}", Reason.TIMESTAMP_OUT_OF_WINDOW)
    letter(subscription, "m-other", Reason.INVALID_EVENT_DATA)
    arriving(subscription, Reason.TIMESTAMP_OUT_OF_WINDOW, "m-new")

    summary = discard(letters, Chosen(datetime.now(UTC), "timestamp_out_of_window"))
    assert summary.lines() == [
        "discarded 3 messages",
        "left 1 message dead-lettered for another reason",
        "left 1 message dead-lettered after this discard began",
    ]
    assert reasons_waiting(subscription) == [
        ("invalid_event_data", "m-other"),
        ("timestamp_out_of_window", "m-new"),
    ]
    assert all_pullable(subscription)


def answering(answer: str, asked: list[str]) -> Callable[[], Callable[[str], str]]:
    def ask(question: str) -> str:
        asked.append(question)
        return answer

    return lambda: ask


@pytest.mark.parametrize(("answer", "status", "left"), [("y", 0, 1), ("n", 1, 3), ("", 1, 3)])
def test_discard_asks_with_the_count_first(
    subscription: FakeSubscription,
    capsys: pytest.CaptureFixture[str],
    answer: str,
    status: int,
    left: int,
) -> None:
    letter(subscription, "m-1", Reason.DOT_SEGMENT_ID)
    letter(subscription, "m-2", Reason.DOT_SEGMENT_ID)
    letter(subscription, "m-3", Reason.USER_NOT_FOUND)
    asked: list[str] = []
    argv = [*ON, "discard", "--reason", "dot_segment_id"]
    assert main(argv, subscriber=subscription, prompt=answering(answer, asked)) == status
    assert asked == ["discard 2 dead letters (reason dot_segment_id)? [y/N] "]
    assert len(subscription.waiting()) == left
    printed = capsys.readouterr().out
    assert ("discarded 2 messages" in printed) == (answer == "y")
    assert all_pullable(subscription)


def test_discard_without_a_terminal_needs_yes_and_touches_nothing(
    subscription: FakeSubscription, capsys: pytest.CaptureFixture[str]
) -> None:
    letter(subscription, "m-1", Reason.DOT_SEGMENT_ID)
    for argv in (["discard", "--reason", "dot_segment_id"], ["discard"]):
        assert main([*ON, *argv], subscriber=subscription, prompt=lambda: None) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("dead-letters: discard ")
    assert subscription.pulls == 0
    assert (
        main([*ON, "discard", "--exported", "nowhere.jsonl", "--yes"], subscriber=subscription) == 2
    )
    assert capsys.readouterr().err.strip() == (
        "dead-letters: nowhere.jsonl.reasons.jsonl not found: --exported takes the FILE "
        "export wrote"
    )
    assert (
        main([*ON, "discard", "--reason", "dot_segment_id", "--yes"], subscriber=subscription) == 0
    )
    assert subscription.waiting() == []


# --- replay --------------------------------------------------------------------------------------


def test_a_replay_of_the_datas_own_fault_is_refused_and_points_at_export(
    subscription: FakeSubscription, capsys: pytest.CaptureFixture[str]
) -> None:
    letter(subscription, "m-1", Reason.MISSING_EVENT_NAME)
    argv = [*ON, "replay", "--reason", "missing_event_name"]
    assert main(argv, subscriber=subscription) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "dead-letters: a replay of missing_event_name would only dead-letter it again; the "
        "data's own fault: `dead-letters export --reason missing_event_name FILE`, correct "
        "FILE, `backfill FILE`, then `dead-letters discard --exported FILE`"
    )
    assert main([*ON, "replay", "--reason", "invalid_webhook"], subscriber=subscription) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("nothing here to correct: `dead-letters discard --reason invalid_webhook`")
    )
    assert subscription.pulls == 0


def test_a_replay_of_everything_leaves_the_datas_own_faults_and_says_what_to_do(
    subscription: FakeSubscription, letters: DeadLetters
) -> None:
    letter(subscription, "m-1", Reason.SAASQUATCH_UNAUTHORIZED)
    letter(subscription, "m-2", Reason.INVALID_EVENT_DATA)  # either: a setting may fix it
    letter(subscription, "m-3", Reason.MISSING_EVENT_NAME)
    letter(subscription, "m-4", Reason.TIMESTAMP_OUT_OF_WINDOW)
    letter(subscription, "m-5", Reason.MISSING_EVENT_NAME)
    raw = FakeTopic("raw-events")

    summary = replay(letters, raw)  # type: ignore[arg-type]
    assert sorted(json.loads(m.data)["messageId"] for m in raw.pull()) == ["m-1", "m-2"]
    assert summary.lines() == [
        "replayed 2 messages",
        "left 3 messages dead-lettered for their own data (missing_event_name 2, "
        "timestamp_out_of_window 1): a replay would dead-letter them again; correct and send "
        "them with `dead-letters export --reason REASON FILE` and `backfill FILE`",
    ]
    assert reasons_waiting(subscription) == [
        ("missing_event_name", "m-3"),
        ("missing_event_name", "m-5"),
        ("timestamp_out_of_window", "m-4"),
    ]
    assert all_pullable(subscription)


def test_what_arrives_during_a_replay_is_left_without_an_invitation_to_loop(
    subscription: FakeSubscription, letters: DeadLetters
) -> None:
    letter(subscription, "m-1", Reason.SAASQUATCH_UNAUTHORIZED)
    arriving(subscription, Reason.SAASQUATCH_UNAUTHORIZED, "m-1-again")
    summary = replay(letters, FakeTopic("raw-events"))  # type: ignore[arg-type]
    assert summary.replayed == 1 and summary.newer == 1
    [newer] = [line for line in summary.lines() if "after this replay began" in line]
    assert "replay again" not in newer
    assert "`dead-letters list` says why" in newer


def test_list_says_what_to_do_under_each_reason(
    subscription: FakeSubscription, letters: DeadLetters, capsys: pytest.CaptureFixture[str]
) -> None:
    letter(subscription, "m-1", Reason.TIMESTAMP_OUT_OF_WINDOW)
    letter(subscription, "m-2", Reason.TRANSFORMER_FAILED)
    assert main([*ON, "list"], subscriber=subscription) == 0
    printed = capsys.readouterr().out
    assert (
        "to do:  the data's own fault: `dead-letters export --reason timestamp_out_of_window FILE`"
        in printed
    )
    assert (
        "to do:  fix the cause, then `dead-letters replay --reason transformer_failed`" in printed
    )
    assert len(list_dead_letters(letters, None)) == 2


def test_every_remedy_is_either_replayable_or_not() -> None:
    assert {remedy for remedy in Remedy if remedy.replayable} == {Remedy.REPLAY, Remedy.EITHER}


# --- the ledger note -----------------------------------------------------------------------------


def ledger_args(tenant: str = "", ledger: bool = True) -> argparse.Namespace:
    return argparse.Namespace(
        ledger=ledger, tenant=tenant, project=PROJECT, ledger_database="(default)",
        ledger_collection="ledger",
    )  # fmt: skip


def test_locally_without_a_tenant_the_ledger_goes_unmentioned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """make run's deliver runs dry and keeps no ledger: nothing is missed, nothing is said."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    assert ledger_check(ledger_args()) == (None, "")
    assert ledger_check(ledger_args(ledger=False))[1].endswith("(--no-ledger)")
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST")
    check, note = ledger_check(ledger_args())
    assert check is None and note.startswith("the delivery ledger is not consulted: give --tenant")
