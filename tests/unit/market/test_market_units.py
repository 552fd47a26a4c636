"""Human amounts to integers and back (pure: no chain)."""

from __future__ import annotations

import pytest

from daimm.errors import ValidationError
from daimm.units import Amount, format_amount, parse_amount

DECIMALS = {"AIMT": 18, "USDC": 6}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 AIMT", Amount(10 * 10**18, "AIMT")),
        ("0.01 ether", Amount(10**16, "ETH")),
        ("2.5 USDC", Amount(2_500_000, "USDC")),
        ("1000 wei", Amount(1000, "ETH")),
        ("3 gwei", Amount(3 * 10**9, "ETH")),
        ("1_000 usdc", Amount(10**9, "USDC")),
        ("10AIMT", Amount(10 * 10**18, "AIMT")),
        (".5 eth", Amount(5 * 10**17, "ETH")),
    ],
)
def test_parseAmount_givesTheSmallestUnit(text, expected):
    assert parse_amount(text, DECIMALS) == expected


def test_parseAmount_readsDecimalsThroughAFunction():
    calls = []

    def decimals_of(symbol):
        calls.append(symbol)
        return 6

    assert parse_amount("1.25 mUSD", decimals_of) == Amount(1_250_000, "MUSD")
    assert calls == ["MUSD"]


def test_parseAmount_bareNumberUsesTheDefaultUnit():
    assert parse_amount("7", DECIMALS, default_unit="USDC") == Amount(7_000_000, "USDC")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", "has no unit"),
        ("abc", "cannot read amount"),
        ("-1 ether", "must not be negative"),
        ("1.0000001 USDC", "more decimal places than USDC allows"),
        ("0.5 wei", "more decimal places"),
        ("5 FOO", "unknown currency 'FOO'"),
        ("1 ether 2", "cannot read amount"),
    ],
)
def test_parseAmount__badText__raisesAClearValidationError(text, message):
    with pytest.raises(ValidationError, match=message):
        parse_amount(text, DECIMALS)


def test_parseAmount__tokenWithoutDecimalsSource__refusesTheUnit():
    with pytest.raises(ValidationError, match="unknown unit 'AIMT'"):
        parse_amount("1 AIMT")


@pytest.mark.parametrize(
    ("value", "decimals", "symbol", "expected"),
    [
        (15 * 10**17, 18, "AIMT", "1.5 AIMT"),
        (10**18, 18, "ETH", "1 ETH"),
        (0, 6, "USDC", "0 USDC"),
        (1, 6, "USDC", "0.000001 USDC"),
        (123_450_000, 6, "USDC", "123.45 USDC"),
    ],
)
def test_formatAmount_printsExactDecimals(value, decimals, symbol, expected):
    assert format_amount(value, decimals, symbol) == expected


def test_formatThenParse_roundTrips():
    value = 1_234_567_890_123_456_789
    assert parse_amount(format_amount(value, 18, "AIMT"), DECIMALS).value == value


def test_format_time__unix_seconds__is_iso_8601_utc():
    from daimm.units import format_time

    assert format_time(1_796_607_910) == "2026-12-07T01:45:10Z"
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(2**64 - 1) == "never"  # a perpetual licence's expiry


def test_format_duration__seconds__in_days_hours_minutes_seconds():
    from daimm.units import format_duration

    assert format_duration(3600) == "1 h"
    assert format_duration(90_061) == "1 d 1 h 1 min 1 s"
    assert format_duration(59) == "59 s"
    assert format_duration(0) == "0 s"
