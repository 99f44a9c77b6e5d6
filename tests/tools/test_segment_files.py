"""The streaming reader behind backfill: JSON Lines or a JSON array, gzip or not, item by item."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools import segment_files
from tools.segment_files import SegmentFile

from ..support.examples import examples

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
messages = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["track", "identify"]), "userId": texts},
        optional={"properties": st.dictionaries(texts, st.one_of(texts, st.integers()))},
    ),
    max_size=20,
)


@settings(max_examples=examples(150), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=messages, chunk=st.integers(min_value=1, max_value=64), gz=st.booleans())
def test_an_array_reads_back_element_by_element_whatever_the_chunk_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, items: list[dict], chunk: int, gz: bool
) -> None:
    monkeypatch.setattr(segment_files, "_CHUNK", chunk)  # characters split across reads
    path = tmp_path / ("a.json.gz" if gz else "a.json")
    text = " \n[\n  " + ",\n  ".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    read = list(SegmentFile(path).items())
    assert [item.error for item in read] == [None] * len(items)
    assert [item.messages for item in read] == [[item] for item in items]
    assert [item.number for item in read] == list(range(1, len(items) + 1))


def test_json_lines_keep_physical_line_numbers_and_name_each_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl.gz"
    lines = [
        '{"type": "identify", "userId": "a"}',
        "",
        "{broken",
        '[{"type": "track"}, {"type": "track"}]',
        '"just a string"',
        '{"batch": [{"type": "track"}], "context": {"ip": "203.0.113.7"}}',
        '{"type": "track", "total": NaN}',
    ]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    read = [(item.number, len(item.messages), item.error) for item in SegmentFile(path).items()]
    assert [(number, count) for number, count, _ in read] == [
        (1, 1),
        (3, 0),
        (4, 2),
        (5, 0),
        (6, 1),
        (7, 0),
    ]
    errors = {number: error for number, _, error in read if error}
    assert errors[3].startswith("not JSON")
    assert "JSON object" in errors[5]
    assert "NaN" in errors[7]
    batch = next(item for item in SegmentFile(path).items() if item.number == 6)
    assert batch.messages == [{"type": "track", "context": {"ip": "203.0.113.7"}}]


def test_resume_skips_the_lines_before(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps({"type": "track", "n": n}) + "\n" for n in range(1, 11)))
    assert [item.number for item in SegmentFile(path).items(resume_from=8)] == [8, 9, 10]


def test_a_broken_array_reports_where_reading_stopped(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"type": "track"}, {"type": oops}, {"type": "track"}]')
    read = list(SegmentFile(path).items())
    assert [(item.number, item.error is None) for item in read] == [(1, True), (2, False)]
    assert "rest of the array" in read[1].error
    path.write_text('[{"type": "track"}, {"type": "track"}')
    assert list(SegmentFile(path).items())[-1].error == "the array ends without a closing ]"


def test_the_progress_position_moves_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps({"type": "track", "n": n}) + "\n" for n in range(5000)))
    source = SegmentFile(path)
    positions = [source.position() for _ in source.items()]
    assert positions[0] <= positions[-1] <= source.size
    assert positions[-1] > 0
