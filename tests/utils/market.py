"""Constants and builders shared by the marketplace contract tests."""

from __future__ import annotations

from typing import Any

from tests.utils.chain import DAY

FEE_BPS = 250
DISPUTE_WINDOW = 3 * DAY
ROYALTY_BPS = 500
WEIGHTS_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
METADATA_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
#: Balances handed to the renter and the buyer, in the smallest unit of AIMT and mUSD.
FUNDS = 10**24
ETH_FUNDS = 10**20
#: The default offer: 1 AIMT (10**18) a day for 1..30 days, perpetual 50 AIMT.
PRICE = 10**18
PERPETUAL = 50 * 10**18


def offer(
    currency: Any,
    *,
    price_per_period: int = PRICE,
    period: int = DAY,
    min_periods: int = 1,
    max_periods: int = 30,
    active: bool = True,
    perpetual_price: int = PERPETUAL,
    price_per_call: int = 0,
) -> tuple:
    """An Offer tuple in ABI order."""
    address = str(getattr(currency, "address", currency))
    return (
        address,
        price_per_period,
        period,
        min_periods,
        max_periods,
        active,
        perpetual_price,
        price_per_call,
    )
