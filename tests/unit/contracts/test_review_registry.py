"""ReviewRegistry: licence holders rate a model 1..5 once per licence; aggregates on chain."""

from __future__ import annotations

import ape
import pytest
from tests.utils.chain import ZERO_ADDRESS, only

COMMENT = "bafkreicomment"


def test_review__licence_holder_rates_the_model(review_registry, rented_licence, renter):
    licence_id, model_id = rented_licence

    tx = review_registry.review(licence_id, 4, COMMENT, sender=renter)

    log = only(tx, review_registry.Reviewed)
    assert log.modelId == model_id
    assert log.licenceId == licence_id
    assert log.reviewer == renter.address
    assert log.rating == 4
    assert log.commentCid == COMMENT
    assert review_registry.ratingOf(model_id) == (1, 4)
    assert review_registry.reviewed(licence_id) is True


def test_review__aggregates_count_and_sum_over_licences(
    review_registry, rented_licence, bought_licence, renter, buyer
):
    licence_a, model_id = rented_licence
    licence_b, model_b = bought_licence
    assert model_b == model_id

    review_registry.review(licence_a, 5, COMMENT, sender=renter)
    review_registry.review(licence_b, 2, "", sender=buyer)

    assert review_registry.ratingOf(model_id) == (2, 7)


def test_rating_of__unrated_model__is_zero(review_registry, model_id):
    assert review_registry.ratingOf(model_id) == (0, 0)


def test_review__empty_comment__is_a_rating_without_comment(
    review_registry, rented_licence, renter
):
    licence_id, model_id = rented_licence

    tx = review_registry.review(licence_id, 3, "", sender=renter)

    assert only(tx, review_registry.Reviewed).commentCid == ""
    assert review_registry.ratingOf(model_id) == (1, 3)


def test_review__lapsed_rental_holder__may_still_review(
    review_registry, rented_licence, licences, renter, chain
):
    licence_id, model_id = rented_licence
    chain.pending_timestamp = licences.licenceOf(licence_id).expires + 1

    review_registry.review(licence_id, 1, COMMENT, sender=renter)

    assert review_registry.ratingOf(model_id) == (1, 1)


def test_review__without_the_licence__reverts(review_registry, rented_licence, creator):
    licence_id, _ = rented_licence

    with ape.reverts(
        review_registry.NotLicenceHolder, licenceId=licence_id, caller=creator.address
    ):
        review_registry.review(licence_id, 5, COMMENT, sender=creator)


def test_review__licence_that_does_not_exist__reverts(review_registry, renter):
    with ape.reverts(review_registry.NotLicenceHolder, licenceId=999, caller=renter.address):
        review_registry.review(999, 5, COMMENT, sender=renter)


def test_review__second_review_of_one_licence__reverts(review_registry, rented_licence, renter):
    licence_id, _ = rented_licence
    review_registry.review(licence_id, 5, COMMENT, sender=renter)

    with ape.reverts(review_registry.AlreadyReviewed, licenceId=licence_id):
        review_registry.review(licence_id, 1, COMMENT, sender=renter)


def test_review__new_holder_of_a_reviewed_licence__reverts(
    review_registry, licences, rented_licence, renter, buyer
):
    licence_id, model_id = rented_licence
    review_registry.review(licence_id, 5, COMMENT, sender=renter)
    licences.transferFrom(renter, buyer, licence_id, sender=renter)

    with ape.reverts(review_registry.AlreadyReviewed, licenceId=licence_id):
        review_registry.review(licence_id, 1, COMMENT, sender=buyer)

    assert review_registry.ratingOf(model_id) == (1, 5)


def test_review__previous_holder_after_transfer__reverts(
    review_registry, licences, rented_licence, renter, buyer
):
    licence_id, _ = rented_licence
    licences.transferFrom(renter, buyer, licence_id, sender=renter)

    with ape.reverts(review_registry.NotLicenceHolder, licenceId=licence_id, caller=renter.address):
        review_registry.review(licence_id, 5, COMMENT, sender=renter)


@pytest.mark.parametrize("rating", [0, 6, 255])
def test_review__rating_outside_one_to_five__reverts(
    review_registry, rented_licence, renter, rating
):
    licence_id, _ = rented_licence

    with ape.reverts(review_registry.InvalidRating, rating=rating):
        review_registry.review(licence_id, rating, COMMENT, sender=renter)


def test_licence_nft__is_the_core_licence_nft(review_registry, licences):
    assert review_registry.licenceNFT() == licences.address


def test_constructor__zero_licence_nft__reverts(project, fresh_deployer):
    with ape.reverts(project.ReviewRegistry.ZeroAddress):
        project.ReviewRegistry.deploy(ZERO_ADDRESS, sender=fresh_deployer)
