"""Money: integer micro-units (1/1,000,000 of the major unit) with an ISO-4217 currency code.

No floats anywhere money flows: `Money * 1.5` raises, `Money + Money` of two currencies raises.
`allocate` is the one function every split uses (90/10, split sheets, pools): largest remainder,
deterministic tie-break, and the parts always sum to the whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from core.errors import ValidationError

MICROS_PER_UNIT = 1_000_000

# ISO 4217 minor-unit exponents for the currencies Ninety handles; anything else is refused.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2,
    "PLN": 2, "CZK": 2, "MXN": 2, "BRL": 2, "JPY": 0, "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3,
}
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}

_AMOUNT_RE = re.compile(r"^\s*(?P<sign>[-+]?)\s*(?P<int>\d{1,15})?(?:[.,](?P<frac>\d+))?\s*$")


class MoneyError(ValidationError):
    code = "invalid_money"


def check_currency(currency: str) -> str:
    if not isinstance(currency, str) or currency.upper() not in CURRENCY_EXPONENTS:
        raise MoneyError(f"{currency!r} is not a currency Ninety supports", code="unsupported_currency")
    return currency.upper()


def minor_unit_micros(currency: str) -> int:
    """How many micros one minor unit (a cent) of the currency is."""
    return MICROS_PER_UNIT // 10 ** CURRENCY_EXPONENTS[check_currency(currency)]


@dataclass(frozen=True, slots=True, order=False)
class Money:
    micros: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.micros, bool) or not isinstance(self.micros, int):
            raise TypeError(f"Money needs integer micros, got {type(self.micros).__name__}")
        object.__setattr__(self, "currency", check_currency(self.currency))

    # construction -------------------------------------------------------------------------------
    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        return cls(minor * minor_unit_micros(currency), currency)

    @classmethod
    def parse(cls, text: str, currency: str, *, whole_minor_units: bool = False) -> Money:
        """Parse what a person types ("4.99", "4,99", "10") into Money, exactly.

        With `whole_minor_units`, refuse amounts finer than the currency's minor unit (a price of 4.995 USD).
        """
        if not isinstance(text, str):
            raise MoneyError("an amount must be written as text, like 4.99")
        match = _AMOUNT_RE.match(text)
        if not match or (match["int"] is None and match["frac"] is None):
            raise MoneyError(f"{text!r} is not an amount; write it like 4.99")
        frac = match["frac"] or ""
        if len(frac) > 6:
            raise MoneyError(f"{text!r} has more than six decimal places", code="too_precise")
        micros = int(match["int"] or "0") * MICROS_PER_UNIT + int(frac.ljust(6, "0"))
        if match["sign"] == "-":
            micros = -micros
        money = cls(micros, currency)
        if whole_minor_units and micros % minor_unit_micros(money.currency):
            raise MoneyError(
                f"{text} is finer than the smallest unit of {money.currency}", code="fractional_minor_unit"
            )
        return money

    @classmethod
    def from_decimal(cls, value: Decimal, currency: str) -> Money:
        try:
            scaled = (value * MICROS_PER_UNIT).to_integral_value(rounding=ROUND_DOWN)
        except InvalidOperation as exc:
            raise MoneyError(f"{value!r} is not an amount") from exc
        if scaled != value * MICROS_PER_UNIT:
            raise MoneyError(f"{value} has more than six decimal places", code="too_precise")
        return cls(int(scaled), currency)

    # arithmetic ---------------------------------------------------------------------------------
    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}", code="currency_mismatch")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.micros + self._same(other).micros, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.micros - self._same(other).micros, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.micros, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError("Money can only be multiplied by an integer; use allocate() for shares")
        return Money(self.micros * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.micros < self._same(other).micros

    def __le__(self, other: Money) -> bool:
        return self.micros <= self._same(other).micros

    def __gt__(self, other: Money) -> bool:
        return self.micros > self._same(other).micros

    def __ge__(self, other: Money) -> bool:
        return self.micros >= self._same(other).micros

    def __bool__(self) -> bool:
        return self.micros != 0

    # views ---------------------------------------------------------------------------------------
    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS[self.currency]

    def floor_minor(self) -> tuple[Money, Money]:
        """Split into (whole minor units, sub-minor rest), both non-negative for a non-negative amount."""
        unit = minor_unit_micros(self.currency)
        whole = (self.micros // unit) * unit
        return Money(whole, self.currency), Money(self.micros - whole, self.currency)

    @property
    def minor_units(self) -> int:
        """Whole minor units (cents), refusing to round anything away."""
        unit = minor_unit_micros(self.currency)
        if self.micros % unit:
            raise MoneyError(f"{self} is not a whole number of minor units", code="fractional_minor_unit")
        return self.micros // unit

    def to_decimal(self) -> Decimal:
        return Decimal(self.micros) / MICROS_PER_UNIT

    def amount_str(self, *, full: bool = False) -> str:
        """"4.99", or with `full` every micro: "4.990000"; sub-cent amounts always show their micros."""
        sign = "-" if self.micros < 0 else ""
        units, rest = divmod(abs(self.micros), MICROS_PER_UNIT)
        digits = f"{rest:06d}"
        if not full:
            keep = max(self.exponent, len(digits.rstrip("0")))
            digits = digits[:keep]
        return f"{sign}{units}.{digits}" if digits else f"{sign}{units}"

    def format(self, *, full: bool = False) -> str:
        symbol = CURRENCY_SYMBOLS.get(self.currency)
        amount = self.amount_str(full=full)
        if symbol:
            return f"-{symbol}{amount[1:]}" if amount.startswith("-") else f"{symbol}{amount}"
        return f"{amount} {self.currency}"

    def __str__(self) -> str:
        return f"{self.amount_str()} {self.currency}"

    def to_json(self) -> dict:
        return {"micros": self.micros, "currency": self.currency, "display": self.format()}


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` (integer micros, may be negative) in proportion to integer `weights`.

    Largest remainder: each part gets floor(total*w/sum); the units left over go one each to the parts
    with the largest remainders, ties broken by position (earlier first). The parts sum to `total`.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 0 for w in weights):
        raise ValueError("weights must be non-negative integers")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    if total < 0:
        return [-part for part in allocate(-total, weights)]
    parts = []
    remainders = []
    for index, weight in enumerate(weights):
        part, remainder = divmod(total * weight, weight_sum)
        parts.append(part)
        remainders.append((-remainder, index))
    leftover = total - sum(parts)
    for _, index in sorted(remainders)[:leftover]:
        parts[index] += 1
    return parts


# Card networks settle three-decimal currencies in steps of ten minor units: Stripe requires an amount in
# BHD, JOD, KWD, OMR or TND to end in 0 (5.124 KWD cannot be charged; 5.120 can).
CHARGE_STEP_MINOR: dict[str, int] = {"BHD": 10, "JOD": 10, "KWD": 10, "OMR": 10, "TND": 10}


def chargeable_minor_units(money: Money) -> int:
    """The amount in the minor units a card payment counts (ISO 4217 exponent: JPY 0, USD 2, KWD 3), exactly.

    Refuses (`not_chargeable`) what a card cannot be charged exactly: a fraction of the minor unit, or a
    three-decimal amount that is not a multiple of ten minor units."""
    unit = minor_unit_micros(money.currency)
    if money.micros % unit:
        raise MoneyError(f"{money} is finer than the smallest unit of {money.currency}, so a card cannot be "
                         "charged it exactly.", code="not_chargeable")
    minor = money.micros // unit
    step = CHARGE_STEP_MINOR.get(money.currency, 1)
    if minor % step:
        raise MoneyError(f"Cards are charged {money.currency} in steps of {Money(unit * step, money.currency)}; "
                         f"{money} cannot be charged exactly.", code="not_chargeable")
    return minor


def share_ceil(total: int, numerator: int, denominator: int) -> int:
    """The share numerator/denominator of a non-negative `total`, rounded up (the artist's side of 90/10)."""
    if total < 0:
        raise ValueError("share_ceil is for non-negative totals")
    return -((-total * numerator) // denominator)
