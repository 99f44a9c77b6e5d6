"""The body limit: the largest batch Segment's Actions destination sends is accepted, one byte
more is not, and a gzip bomb is refused without ingest's memory growing."""

from __future__ import annotations

import gzip
import json
import sys
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest
import requests

from common.strict_json import containers
from subscription.ingest_settings import IngestSettings
from tools.emulator import Emulator

from ..factories import PROJECT, TOKEN, actions_event
from ..support.fakes import FakeTopic
from ..support.functions import MakeIngest
from ..support.processes import Processes
from ..support.pubsub import Topic
from ..support.served import Served

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = int(IngestSettings.default("MAX_BODY_BYTES"))


def test_an_actions_batch_of_4000_events_is_accepted_whole(
    make_ingest: MakeIngest, topic: Topic
) -> None:
    batch = [actions_event(n) for n in range(4000)]
    body = json.dumps(batch, separators=(",", ":")).encode()
    assert 1450 * 4000 < len(body) < 1600 * 4000
    # The real client on the emulator: 4,000 messages take several Publish calls.
    answer = make_ingest(PUBSUB_TOPIC=topic.name).post("/", data=body, headers=AUTH)
    assert (answer.status_code, answer.get_json()) == (200, {"accepted": 4000})
    pulled = topic.pull(4000, timeout=60)
    assert sorted(m.attributes["messageId"] for m in pulled) == sorted(
        m["messageId"] for m in batch
    )


def test_the_default_limit_holds_to_the_byte(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    message = json.dumps(actions_event(1)).encode()
    exact = message + b" " * (LIMIT - len(message))
    client = make_ingest()
    assert client.post("/", data=exact, headers=AUTH).status_code == 200
    over = client.post("/", data=exact + b" ", headers=AUTH)
    assert (over.status_code, over.get_json()) == (
        413,
        {"error": f"body is {LIMIT + 1} bytes; the limit is {LIMIT}", "reason": "body_too_large"},
    )
    compressed = client.post(
        "/", data=gzip.compress(exact + b" "), headers={**AUTH, "Content-Encoding": "gzip"}
    )
    assert (compressed.status_code, compressed.get_json()) == (
        413,
        {"error": f"decoded body is over the limit of {LIMIT} bytes", "reason": "body_too_large"},
    )
    assert len(raw_events.pull()) == 1


def peak_rss_mib(function: Served) -> float:
    """The highest resident memory of the served function's processes so far (VmHWM)."""
    assert function.process is not None
    pids = [function.process.pid]
    children = Path(f"/proc/{pids[0]}/task/{pids[0]}/children").read_text().split()
    peaks = []
    for pid in pids + [int(child) for child in children]:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # fast: 4.5 MB
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join(parts) + compressor.flush()


def test_a_gzip_bomb_is_refused_while_memory_stays_flat(
    processes: Processes, emulator: Emulator, topic: Topic
) -> None:
    env = {
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PUBSUB_TOPIC": topic.name,
        "INGEST_TOKEN": TOKEN,
    }
    ingest = processes.serve("ingest", env)
    warm = requests.post(ingest.url, json=actions_event(1), headers=AUTH, timeout=10)
    assert warm.status_code == 200
    before = peak_rss_mib(ingest)
    bomb = gzip_of_zeros(1024**3)  # 1 GiB of zeros
    assert len(bomb) < LIMIT  # so only the decoded size can refuse it
    headers = {**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    answer = requests.post(ingest.url, data=bomb, headers=headers, timeout=30)
    assert (answer.status_code, answer.json()) == (
        413,
        {"error": f"decoded body is over the limit of {LIMIT} bytes", "reason": "body_too_large"},
    )
    # At most the limit decoded, the compressed body and their copies; never the gigabyte.
    growth = peak_rss_mib(ingest) - before
    assert growth < 4 * LIMIT / 1024**2, f"peak memory grew {growth:.0f} MiB"
    assert len(topic.pull(2, timeout=2)) == 1


def test_an_envelope_context_copied_into_every_item_is_bounded(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    """2 MB of envelope context and 200 items would be 400 MB of messages: refused, with memory
    bounded by the body, and nothing published."""
    items = [{"type": "track", "event": "Signed Up", "userId": f"u-{n}"} for n in range(200)]
    big = {"batch": items, "context": {"blob": "x" * 2_000_000}}
    many_keys = {"batch": items * 30, "context": {f"k{n}": n for n in range(200)}}
    client = make_ingest()
    for body, status in ((big, 413), (many_keys, 400)):
        data = json.dumps(body).encode()
        tracemalloc.start()
        answer = client.post("/", data=data, headers=AUTH)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert answer.status_code == status, answer.get_json()
        assert "envelope" in answer.get_json()["error"]
        assert peak < 8 * len(data) + 2 * LIMIT, f"peak {peak / 2**20:.0f} MiB"
    assert raw_events.pull() == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" + b",".join([b"{}"] * 1_500_000) + b"]", "more than 250000 objects and arrays"),
        (b"[" + b",".join([b"[[]]"] * 800_000) + b"]", "more than 250000 objects and arrays"),
        (b"[" + b",".join([b'"ab"'] * 20_000) + b"]", "20000 items; at most 10000"),
    ],
    ids=["empty objects", "nested arrays", "many small items"],
)
def test_what_a_body_would_build_is_counted_before_it_is_built(
    make_ingest: MakeIngest, raw_events: FakeTopic, body: bytes, says: str
) -> None:
    """Memory follows the objects a body opens, not its bytes: 8 MiB of `[{},{},...]` took
    ingest to 1.2 GB. Counted on the bytes (outside strings), refused before parsing."""
    tracemalloc.start()
    answer = make_ingest().post("/", data=body, headers=AUTH)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (answer.status_code, answer.get_json()["reason"]) == (413, "body_too_large")
    assert says in answer.get_json()["error"]
    assert raw_events.pull() == []
    if "objects" in says:
        # Parsed, 1.5 million objects would take over 100 MiB; refused first, the peak is the
        # test client's copies of the body.
        assert peak < 60 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_braces_inside_strings_are_not_counted(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "properties": {"t": "{[" * 200_000}}
    answer = make_ingest().post("/", json=message, headers=AUTH)
    assert answer.get_json() == {"accepted": 1}


def test_counting_an_unterminated_string_is_one_pass() -> None:
    """An open string full of escaped quotes made the count try every quote to the end of the
    body: 40,000 of them took 24 s, 8 MiB would take hours. Bounded far above one pass."""
    body = b"[" * 250_001 + b'"' + b'\\"' * 2_000_000
    counted: list[int] = []
    worker = threading.Thread(target=lambda: counted.append(containers(body, 250_000)), daemon=True)
    worker.start()
    worker.join(60)
    assert counted == [250_001]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        # Set-aside items carry the merged context: 1,000 copies of 100 KB.
        (
            b'{"batch":['
            + b",".join([b'{"x":NaN}'] * 1000)
            + b'],"context":{"k":"'
            + b"A" * 100_000
            + b'"}}',
            413,
            "envelope's context",
        ),
        # No bad item needed: 2,000 copies of a 1 MB context, refused before any is made.
        (
            b'{"writeKey":NaN,"batch":['
            + b",".join(b'{"type":"track","event":"e","userId":"u%d"}' % n for n in range(2000))
            + b'],"context":{"k":"'
            + b"A" * 1_000_000
            + b'"}}',
            413,
            "envelope's context",
        ),
        # What every item would get is judged once: a bad envelope is the body's fault.
        (b'{"batch":[{"type":"identify","userId":"u"}],"context":{"x":NaN}}', 400, "envelope"),
    ],
    ids=["set-aside copies", "copies before completing", "bad envelope"],
)
def test_the_envelope_is_judged_and_costed_once(
    make_ingest: MakeIngest, raw_events: FakeTopic, body: bytes, status: int, says: str
) -> None:
    answer = make_ingest().post("/", data=body, headers=AUTH)
    assert answer.status_code == status, answer.get_json()
    assert says in answer.get_json()["error"]
    assert raw_events.pull() == []


def test_a_deeply_nested_bad_item_is_set_aside_not_a_500(
    make_ingest: MakeIngest, raw_events: FakeTopic
) -> None:
    """Writing the item back as text recursed two frames per level: a bad item nested 9,000
    deep (which the served parser took) was a RecursionError, a 500, and so Segment retried the
    good items with it for ever."""
    deep = b"[" * 9000 + b"NaN" + b"]" * 9000
    good = json.dumps(actions_event(1)).encode()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(12_000)  # room for the parser, as the served process had
    try:
        answer = make_ingest().post("/", data=b"[" + good + b"," + deep + b"]", headers=AUTH)
    finally:
        sys.setrecursionlimit(limit)
    assert (answer.status_code, answer.get_json()) == (200, {"accepted": 2, "invalid": 1})
    [bad] = [m for m in raw_events.pull() if "invalidItem" in m.attributes]
    assert bad.data == deep
