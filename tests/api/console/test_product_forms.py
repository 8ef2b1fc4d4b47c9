"""The console's product forms: decimal prices to minor units exactly, and the forms as schemas."""

from __future__ import annotations

import pytest

from api.schemas.catalog import MAX_PRICE
from api.web.console.product_forms import (
    FieldRefused,
    amount_text,
    minor_units,
    new_product,
    product_changes,
    stock_change,
)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        ("12", "USD", 1200),
        ("0.10", "EUR", 10),
        ("0.29", "GBP", 29),  # 0.29 * 100 is 28.999999999999996 in floats
        ("1.005", "USD", None),
        ("1200", "JPY", 1200),
        ("1200.0", "JPY", 1200),  # exact, so taken
        ("1200.5", "JPY", None),
        ("999999999999999.99", "USD", 99999999999999999),
    ],
)
def test_minor_units_are_exact(text: str, currency: str, minor: int | None) -> None:
    if minor is None:
        with pytest.raises(FieldRefused):
            minor_units(text, currency)
    else:
        assert minor_units(text, currency) == minor


@pytest.mark.parametrize(
    "text", ["", "-1", "+1", "1e3", "1,50", "12.", ".5", "NaN", "Infinity", "1 000", "٣"]
)
def test_anything_but_a_plain_decimal_is_refused(text: str) -> None:
    with pytest.raises(FieldRefused, match="Enter an amount like 12.50"):
        minor_units(text, "USD")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(1250, "USD", "12.50"), (5, "EUR", "0.05"), (0, "CHF", "0.00"), (1200, "JPY", "1200")],
)
def test_amount_text_is_what_minor_units_reads_back(minor: int, currency: str, text: str) -> None:
    assert amount_text(minor, currency) == text
    assert minor_units(text, currency) == minor


def test_new_product_is_post_products_body() -> None:
    body, errors = new_product(
        {"sku": "A-1", "name": "Cup", "category": "home", "price": "3.20", "currency": "EUR"}
    )
    assert errors == {}
    assert body is not None
    assert body.model_dump() == {
        "sku": "A-1",
        "name": "Cup",
        "description": "",
        "category": "home",
        "price": 320,
        "currency": "EUR",
        "stock": 0,
        "active": True,
    }


def test_new_product_names_every_failing_field_at_once() -> None:
    body, errors = new_product({"sku": "no spaces", "currency": "USD", "price": "x", "stock": "-1"})
    assert body is None
    assert set(errors) == {"sku", "name", "category", "price", "stock"}


def test_a_price_above_the_catalogs_bound_is_refused() -> None:
    too_much = amount_text(MAX_PRICE + 1, "USD")
    body, errors = new_product(
        {"sku": "A", "name": "A", "category": "a", "currency": "USD", "price": too_much}
    )
    assert body is None and set(errors) == {"price"}


def test_the_edit_form_sends_every_field_and_a_blank_description_clears_it() -> None:
    body, errors = product_changes({"name": "N", "category": "c", "price": "1.00"}, "USD")
    assert errors == {}
    assert body is not None
    assert body.model_dump(exclude_unset=True) == {
        "name": "N",
        "category": "c",
        "description": "",
        "price": 100,
    }
    assert product_changes({"price": "1.00"}, "USD")[1] == {
        "name": "This field is required.",
        "category": "This field is required.",
    }


def test_the_stock_form_is_a_patch_of_stock_only() -> None:
    body, errors = stock_change({"stock": "12"})
    assert body is not None and body.model_dump(exclude_unset=True) == {"stock": 12}
    assert stock_change({})[1] == {"stock": "This field is required."}
    assert stock_change({"stock": "1000000001"})[1].keys() == {"stock"}
