"""Creator reputation: the formula alone, and as the catalog derives it from chain events."""

from __future__ import annotations

import pytest

from daimm.catalog import creator_reputation
from daimm.catalog.search import PRIOR_MEAN, PRIOR_WEIGHT, reputation_score

AIMT = 10**18
REFUND, RELEASE, SPLIT = 0, 1, 2


@pytest.mark.parametrize(
    ("count", "total", "paid", "lost", "expected"),
    [
        (0, 0, 0, 0.0, 3.0),  # nothing known: the prior
        (1, 5, 1, 0.0, 3.5),  # (3*3 + 5) / (3 + 1)
        (10, 50, 10, 0.0, 4.538),  # (9 + 50) / 13: a long record approaches its average
        (2, 10, 3, 1.0, 2.85),  # (9 + 10) / 5 = 3.8, times (1 - 1/4)
        (0, 0, 1, 1.0, 1.5),  # one sale, refunded: half the prior
    ],
)
def test_reputation_is_a_bayesian_average_discounted_by_the_share_of_disputes_lost(
    count, total, paid, lost, expected
):
    assert reputation_score(count, total, paid, lost) == expected
    assert (PRIOR_MEAN, PRIOR_WEIGHT) == (3.0, 3)


def test_a_creators_reputation_counts_their_reviews_payments_and_disputes_lost(
    market, creator, rival, renter, buyer, arbiter, publish, set_offer, make_indexer, store
):
    first = publish(creator, {"name": "first"})
    second = publish(creator, {"name": "second"})
    elsewhere = publish(rival, {"name": "rival's"})
    for model_id, owner in ((first, creator), (second, creator), (elsewhere, rival)):
        set_offer(owner, model_id, rent=2, buy=10)
    bought = market.escrow.buy(first, 10 * AIMT, sender=buyer)  # payment 1
    perpetual = int(bought.decode_logs(market.escrow.Bought)[0].licenceId)
    market.escrow.rent(first, 1, 2 * AIMT, sender=renter)  # payment 2
    market.escrow.rent(second, 1, 2 * AIMT, sender=renter)  # payment 3
    market.escrow.rent(elsewhere, 1, 2 * AIMT, sender=buyer)  # the rival's
    rental_first = int(market.licences.rentalOf(first, renter))
    rental_second = int(market.licences.rentalOf(second, renter))
    market.reviews.review(rental_first, 5, "bafy1", sender=renter)
    market.reviews.review(perpetual, 4, "bafy2", sender=buyer)
    market.reviews.review(int(market.licences.rentalOf(elsewhere, buyer)), 1, "bafy3", sender=buyer)
    market.escrow.openDispute(rental_first, sender=renter)
    market.escrow.resolveDispute(market.escrow.disputeCount(), SPLIT, 2_500, sender=arbiter)
    market.escrow.openDispute(rental_second, sender=renter)
    market.escrow.resolveDispute(market.escrow.disputeCount(), RELEASE, 0, sender=arbiter)

    make_indexer().sync()
    reputation = creator_reputation(store, creator.address)

    assert (reputation.models, reputation.rating_count, reputation.rating_sum) == (2, 2, 9)
    assert (reputation.paid_licences, reputation.disputes_lost) == (3, 0.25)
    # (3*3 + 9) / (3 + 2) = 3.6; times (1 - 0.25 / (3 + 1))
    assert reputation.score == round(3.6 * (1 - 0.25 / 4), 3) == 3.375
    assert creator_reputation(store, rival.address).rating_count == 1


def test_a_refunded_dispute_counts_as_a_whole_dispute_lost(
    market, creator, renter, arbiter, publish, set_offer, make_indexer, store
):
    model_id = publish(creator, {"name": "refunded"})
    set_offer(creator, model_id, rent=2)
    market.escrow.rent(model_id, 1, 2 * AIMT, sender=renter)
    market.escrow.openDispute(int(market.licences.rentalOf(model_id, renter)), sender=renter)
    market.escrow.resolveDispute(market.escrow.disputeCount(), REFUND, 0, sender=arbiter)

    make_indexer().sync()
    reputation = creator_reputation(store, creator.address)

    assert (reputation.paid_licences, reputation.disputes_lost) == (1, 1.0)
    assert reputation.score == 1.5
