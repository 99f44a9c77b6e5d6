"""Order Completed / Order Refunded -> SaaSquatch purchase / refund with their closed schemas."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from common.outcomes import Outcome
from saasquatch.calls import Purpose

from ..factories import ORDER_COMPLETED_FIELDS, order_completed, order_refunded, plan_for
from ..support.saasquatch_rules import PURCHASE_FIELDS, REFUND_FIELDS, check_events


def fields_of(message: dict[str, Any], **options: Any) -> dict[str, Any]:
    plan = plan_for(message, **options)
    assert plan.outcome is Outcome.DELIVERED, plan
    (send,) = [call for call in plan.calls if call.purpose is Purpose.TRACK_EVENT]
    assert send.body is not None
    check_events(send.body)
    return send.body["events"][0]["fields"]


def test_order_completed_spec_example_becomes_an_exact_purchase() -> None:
    plan = plan_for(order_completed())
    assert plan.event_key == "purchase"
    assert fields_of(order_completed()) == ORDER_COMPLETED_FIELDS


def test_order_refunded_spec_example_becomes_an_exact_refund() -> None:
    message = order_refunded(
        {
            "order_id": "50314b8e9bcf000000000000",
            "total": "30",
            "currency": "eur",
            "checkout_id": "not in the refund schema",
            "products": [
                {"product_id": "507f1f77bcf86cd799439011", "price": "19.99", "quantity": 1}
            ],
        }
    )
    plan = plan_for(message)
    assert plan.event_key == "refund"
    fields = fields_of(message)
    assert fields == {
        "order_id": "50314b8e9bcf000000000000",
        "total": 30,
        "currency": "EUR",
        "products": [{"product_id": "507f1f77bcf86cd799439011", "price": 19.99, "quantity": 1}],
    }
    jsonschema.validate(fields, REFUND_FIELDS)
    assert any("checkout_id" in note for note in plan.notes)


def test_string_amounts_become_numbers_and_numbers_in_text_fields_become_strings() -> None:
    fields = fields_of(order_completed(total="39.95", tax="0", order_id=12345, coupon=7.5))
    assert fields["total"] == 39.95
    assert fields["tax"] == 0
    assert fields["order_id"] == "12345"
    assert fields["coupon"] == "7.5"


@pytest.mark.parametrize(("given", "expected"), [("usd", "USD"), (" eur ", "EUR"), ("Gbp", "GBP")])
def test_currency_is_upper_cased(given: str, expected: str) -> None:
    assert fields_of(order_completed(currency=given))["currency"] == expected


def test_products_without_product_id_take_id_or_sku_else_are_dropped() -> None:
    products = [
        {"id": "p-1", "name": "Has id"},
        {"sku": "SKU-2", "name": "Has sku"},
        {"name": "Nothing to identify it"},
        {"productId": 99, "name": "camelCase id"},
        "not an object",
    ]
    plan = plan_for(order_completed(products=products))
    fields = fields_of(order_completed(products=products))
    assert fields["products"] == [
        {"product_id": "p-1", "name": "Has id"},
        {"product_id": "SKU-2", "sku": "SKU-2", "name": "Has sku"},
        {"product_id": "99", "name": "camelCase id"},
    ]
    notes = " ".join(plan.notes)
    assert "products[2]" in notes and "products[4]" in notes


def test_unknown_purchase_properties_and_nulls_are_left_out_and_noted() -> None:
    message = order_completed(partner_id="p-77", value=10, coupon=None)
    fields = fields_of(message)
    assert "partner_id" not in fields and "value" not in fields and "coupon" not in fields
    notes = " ".join(plan_for(message).notes)
    assert "partner_id" in notes and "value" in notes and "coupon (null)" in notes


def test_camel_case_property_names_fill_the_snake_case_schema() -> None:
    message = order_completed()
    message["properties"] = {"orderId": "o-1", "checkoutId": "c-1", "Total": 5}
    assert fields_of(message) == {"checkout_id": "c-1", "order_id": "o-1", "total": 5}


def test_text_fields_are_cut_to_375_characters() -> None:
    fields = fields_of(order_completed(order_id="o" * 4096, affiliation="🛒" * 500))
    assert fields["order_id"] == "o" * 375
    assert fields["affiliation"] == "🛒" * 375


def test_at_most_200_products_are_sent() -> None:
    products = [{"product_id": f"p{i}", "quantity": 1} for i in range(250)]
    fields = fields_of(order_completed(products=products))
    assert [p["product_id"] for p in fields["products"]] == [f"p{i}" for i in range(200)]


@pytest.mark.parametrize(
    ("properties", "left_out"),
    [
        ({"total": -5}, "total"),
        ({"currency": "dollars"}, "currency"),
        ({"tax": "a lot"}, "tax"),
        ({"discount": True}, "discount"),
        ({"products": "nope"}, "products"),
    ],
)
def test_values_that_still_break_the_schema_are_left_out(
    properties: dict[str, Any], left_out: str
) -> None:
    fields = fields_of(order_completed(**properties))
    assert left_out not in fields
    assert "order_id" in fields, "the rest of the purchase is still sent"


def test_invalid_product_values_are_left_out_per_field() -> None:
    products = [{"product_id": "p1", "price": -1, "quantity": 1.5, "position": "3"}]
    fields = fields_of(order_completed(products=products))
    assert fields["products"] == [{"product_id": "p1", "position": 3}]


def test_discard_event_strategy_dead_letters_a_purchase_that_breaks_the_schema() -> None:
    plan = plan_for(order_completed(total=-5), invalid_data_strategy="discard_event")
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, "invalid_event_data")
    assert plan.detail is not None and "total" in plan.detail


def test_order_completed_remap_can_be_switched_off() -> None:
    message = order_completed()
    plan = plan_for(message, remap_order_completed=False)
    assert plan.event_key == "orderCompleted"
    fields = fields_of(message, remap_order_completed=False)
    assert fields["order_id"] == "50314b8e9bcf000000000000"
    assert fields["products"][0]["image_url"] == "https://www.example.com/product/path.jpg"


def test_order_refunded_is_always_a_refund() -> None:
    plan = plan_for(order_refunded({"order_id": "o-1"}), remap_order_completed=False)
    assert plan.event_key == "refund"


def test_the_schemas_written_in_the_tests_reject_what_the_mapper_must_never_send() -> None:
    """Guards the guard: the independent schema really is closed and strict."""
    for bad in ({"unknown": 1}, {"total": -1}, {"currency": "usd"}, {"products": [{"sku": "x"}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, PURCHASE_FIELDS)
