"""The one rule shape and its interpreter: what every mapper table can rely on."""

from __future__ import annotations

from typing import Any

from mapper.ecommerce import count, text
from mapper.notes import Notes
from mapper.rules import ArrayOf, Derived, Field, Table


def _initial(name: object) -> str | None:
    return name[:1] if isinstance(name, str) else None


ITEM = Table({"item_id": Field(text, also=("id", "sku")), "sku": Field(text)})
TABLE = Table(
    {
        "order_id": Field(text),
        "image": Field(text, source="avatar"),
        "initial": Field(text, fallback=Derived("full_name", _initial)),
        "quantity": Field(count),
        "items": ArrayOf(ITEM, max_items=2, required="item_id"),
    }
)


def read(source: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    notes = Notes()
    return TABLE.read(source, notes), notes.lines()


def test_names_match_ignoring_case_and_separators_in_table_order() -> None:
    fields, notes = read({"Quantity": "3", "Order ID": 12, "AVATAR": "u"})
    assert list(fields.items()) == [("order_id", "12"), ("image", "u"), ("quantity", 3)]
    assert notes == ()


def test_the_first_non_empty_spelling_wins_and_the_other_is_noted() -> None:
    fields, notes = read({"orderId": "", "order_id": "A1", "ORDER-ID": "B2"})
    assert fields == {"order_id": "A1"}
    assert notes == ("properties left out: orderId; ORDER-ID",)


def test_unknown_null_and_invalid_values_are_noted_by_name_only() -> None:
    fields, notes = read({"order_id": None, "quantity": -1, "secret": "s3cr3t"})
    assert fields == {}
    assert notes == (
        "properties left out: secret; order_id (null)",
        "invalid values left out: quantity must be >= 0",
    )
    assert "s3cr3t" not in " ".join(notes)


def test_a_fallback_reads_other_fields_by_name_when_the_source_gives_nothing() -> None:
    assert read({"Full Name": "Ada"})[0] == {"initial": "A"}
    assert read({"initial": "Z", "full_name": "Ada"})[0] == {"initial": "Z"}


def test_other_sources_are_tried_in_order_and_quietly() -> None:
    fields, notes = read({"items": [{"sku": "S"}, {"id": {"no": 1}, "sku": "S2"}, {"id": "I"}]})
    assert fields == {"items": [{"item_id": "S", "sku": "S"}, {"item_id": "S2", "sku": "S2"}]}
    assert notes == ("properties left out: items[2:] (over 2)",)


def test_nested_items_without_the_required_field_or_not_objects_are_left_out() -> None:
    fields, notes = read({"items": [7, {"name": "x"}, {"item_id": "ok"}]})
    assert fields == {"items": [{"item_id": "ok"}]}
    assert notes == (
        "properties left out: items[0] (not an object); items[1].name; "
        "items[1] (no item_id, id or sku)",
    )


def test_an_array_field_that_is_not_an_array_is_invalid() -> None:
    assert read({"items": {"item_id": "x"}}) == (
        {},
        ("invalid values left out: items must be an array of items",),
    )


def test_without_notes_the_rest_is_left_quietly() -> None:
    assert TABLE.read({"order_id": "A", "other": 1, "quantity": "x"}, None) == {"order_id": "A"}


def test_keys_cover_every_name_a_table_reads() -> None:
    assert ITEM.keys == {"itemid", "id", "sku"}
    assert {"avatar", "fullname"} <= TABLE.keys


def test_notes_group_items_under_headings_in_first_seen_order() -> None:
    notes = Notes()
    notes.add("a", "1")
    notes.add("empty")  # no items: nothing
    notes.say("a line")
    notes.add("a", "2", "3")
    notes.invalid("x must be text")
    assert notes.lines() == ("a: 1; 2; 3", "a line", "invalid values left out: x must be text")
    assert notes.invalid_values == ("x must be text",)
