import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import Money, MoneyError, allocate, share_ceil


def test_parse_user_input_exactly():
    assert Money.parse("4.99", "USD") == Money(4_990_000, "USD")
    assert Money.parse("4,99", "eur") == Money(4_990_000, "EUR")
    assert Money.parse("10", "USD").micros == 10_000_000
    assert Money.parse(".5", "USD").micros == 500_000
    assert Money.parse("0.000001", "USD").micros == 1


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "4.9999999", "1e3", "NaN", "--1"])
def test_parse_refuses_what_is_not_an_amount(text):
    with pytest.raises(MoneyError):
        Money.parse(text, "USD")


def test_whole_minor_units_refuses_fractional_cents():
    with pytest.raises(MoneyError) as info:
        Money.parse("4.995", "USD", whole_minor_units=True)
    assert info.value.code == "fractional_minor_unit"
    assert Money.parse("500", "JPY", whole_minor_units=True).minor_units == 500
    with pytest.raises(MoneyError):
        Money.parse("5.5", "JPY", whole_minor_units=True)


def test_arithmetic_refuses_mixed_currencies_and_floats():
    with pytest.raises(MoneyError):
        Money(1, "USD") + Money(1, "EUR")
    with pytest.raises(TypeError):
        Money(1, "USD") * 1.5
    with pytest.raises(TypeError):
        Money(1.0, "USD")
    with pytest.raises(MoneyError):
        Money(1, "XXX")
    assert Money(3, "USD") * 2 == Money(6, "USD")


def test_formatting_per_currency():
    assert Money(4_990_000, "USD").format() == "$4.99"
    assert Money(1_000_000_000, "JPY").format() == "¥1000"
    assert Money(1_234_567, "EUR").format() == "€1.234567"
    assert str(Money(-2_500_000, "GBP")) == "-2.50 GBP"
    assert Money(1_500, "USD").format(full=True) == "$0.001500"


def test_floor_minor_keeps_the_sub_cent_rest():
    whole, rest = Money(12_345_678, "USD").floor_minor()
    assert whole == Money(12_340_000, "USD") and rest == Money(5_678, "USD")


@given(st.integers(-10**15, 10**15), st.lists(st.integers(0, 10_000), min_size=1, max_size=12))
def test_allocate_parts_sum_to_the_whole(total, weights):
    if sum(weights) == 0:
        weights[0] = 1
    parts = allocate(total, weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = total * weight / weight_sum
        assert abs(part - exact) < 1 + 1e-9 * abs(total)


def test_allocate_tie_break_is_deterministic_by_position():
    assert allocate(1, [1, 1, 1]) == [1, 0, 0]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(100, [7000, 3000]) == [70, 30]


@given(st.integers(0, 10**15))
def test_share_ceil_gives_artists_at_least_ninety_percent(total):
    artist = share_ceil(total, 9, 10)
    assert artist * 10 >= total * 9
    assert artist * 10 - total * 9 < 10

