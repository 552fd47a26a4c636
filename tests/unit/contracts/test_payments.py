"""Payments and PayeeSets libraries, alone (through the test-only MockPayments harness)."""

from __future__ import annotations

import pytest
from tests.utils.chain import HOUR, split_id


@pytest.fixture(scope="session")
def payments(project, deployer):
    return project.MockPayments.deploy(sender=deployer)


def test_fee__rounds_down(payments):
    assert payments.fee(999, 250) == 24
    assert payments.fee(10**18, 250) == 25 * 10**15
    assert payments.fee(39, 250) == 0


def test_release_at__rounds_up_to_the_hour(payments):
    assert payments.releaseAt(1, 10, HOUR) == HOUR
    assert payments.releaseAt(HOUR - 10, 10, HOUR) == HOUR
    assert payments.releaseAt(HOUR - 9, 10, HOUR) == 2 * HOUR


def test_shares__odd_amount__dust_goes_to_the_first_payee(payments):
    amounts = payments.shares(1_000_003, [3_333, 3_333, 3_334])

    assert list(amounts) == [1_000_003 - 333_300 - 333_401, 333_300, 333_401]
    assert sum(amounts) == 1_000_003


def test_shares__single_payee_gets_everything(payments):
    assert list(payments.shares(7, [10_000])) == [7]


def test_split_refund__parts_add_back_to_the_whole(payments):
    refund, refund_fee = payments.splitRefund(1_001, 25, 3_333)

    assert (refund, refund_fee) == (333, 8)
    assert 25 - refund_fee <= 1_001 - refund


def test_split_id__is_above_every_address(payments):
    assert payments.splitId(1, 1) == split_id(1, 1)
    assert payments.isSplit(split_id(1, 1))
    assert not payments.isSplit(2**160 - 1)
