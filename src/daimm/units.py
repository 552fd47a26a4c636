"""Amounts in human units: ``"10 AIMT"``, ``"0.01 ether"``, ``"2.5 USDC"``, ``"1000 wei"``.

Everything on chain is an integer in a currency's smallest unit (wei for ETH). These helpers turn
what a person types into that integer, and back, with exact decimal arithmetic (never floats).

The decimals of an ERC-20 come from the token itself: callers pass ``decimals_of``, a function (or
mapping) from an upper-case symbol to its decimals, so this module stays free of chain access.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from daimm.errors import ValidationError

__all__ = [
    "ETH_UNITS",
    "Amount",
    "format_amount",
    "format_duration",
    "format_time",
    "parse_amount",
]

#: Ether denominations and their decimals (the amount is always returned in wei).
ETH_UNITS: dict[str, int] = {
    "WEI": 0,
    "GWEI": 9,
    "ETH": 18,
    "ETHER": 18,
}

_AMOUNT = re.compile(
    r"^\s*(?P<number>[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)\s*(?P<unit>[A-Za-z][\w.-]*)?\s*$"
)

DecimalsOf = Callable[[str], int] | Mapping[str, int]


@dataclass(frozen=True)
class Amount:
    """An integer amount of one currency.

    Attributes:
        value: The amount in the currency's smallest unit (wei for ETH).
        symbol: ``ETH`` for ether (whatever denomination was typed), else the token's symbol.
    """

    value: int
    symbol: str

    @property
    def is_eth(self) -> bool:
        """Whether the amount is in ether (wei)."""
        return self.symbol == "ETH"


def _decimals(symbol: str, decimals_of: DecimalsOf | None) -> int:
    if symbol in ETH_UNITS:
        return ETH_UNITS[symbol]
    if decimals_of is None:
        raise ValidationError(
            f"unknown unit {symbol!r}: use wei, gwei, ether or the symbol of an allowed currency"
        )
    try:
        if isinstance(decimals_of, Mapping):
            return int(decimals_of[symbol])
        return int(decimals_of(symbol))
    except (KeyError, LookupError) as exc:
        raise ValidationError(
            f"unknown currency {symbol!r}: use wei, gwei, ether or the symbol of an allowed"
            " currency of this deployment"
        ) from exc


def parse_amount(
    text: str | int,
    decimals_of: DecimalsOf | None = None,
    *,
    default_unit: str | None = None,
) -> Amount:
    """Parse a human amount into an integer of the currency's smallest unit.

    Args:
        text: ``"<number> <unit>"``; the unit is ``wei``, ``gwei``, ``ether``/``eth`` or a token
            symbol. An ``int`` is taken as already in the smallest unit of ``default_unit``.
        decimals_of: Decimals of token symbols (upper case), as a mapping or a function that raises
            ``KeyError`` for an unknown symbol.
        default_unit: Unit of a bare number (``"10"``); without it a bare number is refused, since
            guessing between wei and ether loses money.

    Returns:
        The amount; ``symbol`` is ``ETH`` for every ether denomination.

    Raises:
        ValidationError: Unparsable text, an unknown unit, a negative number, or more fractional
            digits than the currency has.
    """
    if isinstance(text, int):
        if default_unit is None:
            raise ValidationError(f"amount {text} has no unit: write e.g. '{text} wei'")
        if text < 0:
            raise ValidationError(f"amount must not be negative, got {text}")
        symbol = default_unit.upper()
        return Amount(text, "ETH" if symbol in ETH_UNITS else symbol)

    if text.strip().startswith("-"):
        raise ValidationError(f"amount must not be negative, got {text.strip()!r}")
    match = _AMOUNT.match(text)
    if match is None:
        raise ValidationError(
            f"cannot read amount {text!r}: write a number and a unit,"
            " e.g. '10 AIMT' or '0.01 ether'"
        )
    number_text = match["number"].replace("_", "")
    unit = match["unit"] or default_unit
    if unit is None:
        raise ValidationError(
            f"amount {text!r} has no unit: write e.g. '{number_text} AIMT' or '{number_text} ether'"
        )
    symbol = unit.upper()
    decimals = _decimals(symbol, decimals_of)
    try:
        number = Decimal(number_text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
        raise ValidationError(f"cannot read number {number_text!r}") from exc
    scaled = number.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"{text.strip()!r} has more decimal places than {symbol} allows ({decimals})"
        )
    return Amount(int(scaled), "ETH" if symbol in ETH_UNITS else symbol)


def format_amount(value: int, decimals: int, symbol: str) -> str:
    """Format an integer amount for people (``15 * 10**17`` at 18 decimals is ``1.5 AIMT``).

    Args:
        value: Amount in the smallest unit.
        decimals: The currency's decimals (18 for ETH).
        symbol: Shown after the number.
    """
    text = format(Decimal(value).scaleb(-decimals).normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {symbol}"


def format_time(seconds: int) -> str:
    """A Unix time for people, as ISO 8601 in UTC (``2026-12-07T03:00:00Z``).

    Times past the year 9999 (a perpetual licence's ``2**64 - 1``) are ``"never"``.

    Args:
        seconds: Seconds since 1970-01-01 UTC (a block timestamp).
    """
    try:
        moment = datetime.fromtimestamp(int(seconds), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return "never"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds: int) -> str:
    """A length of time for people: ``3600`` is ``"1 h"``, ``90061`` is ``"1 d 1 h 1 min 1 s"``.

    Args:
        seconds: Whole seconds (0 or more).
    """
    rest = max(int(seconds), 0)
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts) or "0 s"
