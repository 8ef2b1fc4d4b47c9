import pytest

from core.money import CurrencyMismatch, Money, total


def test_adds_and_multiplies_in_minor_units() -> None:
    line = Money(1999, "USD") * 3
    assert line == Money(5997, "USD")
    assert total([line, Money(1, "USD")], "USD") == Money(5998, "USD")


@pytest.mark.parametrize("amount", [19.99, True, "1999"])
def test_refuses_anything_but_int_amounts(amount: object) -> None:
    with pytest.raises(TypeError):
        Money(amount, "USD")  # type: ignore[arg-type]


def test_refuses_mixing_currencies() -> None:
    with pytest.raises(CurrencyMismatch):
        Money(100, "USD") + Money(100, "EUR")


def test_refuses_unknown_currency() -> None:
    with pytest.raises(ValueError, match="unsupported currency"):
        Money(100, "XXX")


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1250, "USD"), "USD 12.50"),
        (Money(-5, "EUR"), "EUR -0.05"),
        (Money(300, "JPY"), "JPY 300"),
    ],
)
def test_formats_for_people(money: Money, text: str) -> None:
    assert money.format() == text
