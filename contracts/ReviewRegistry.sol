// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ILicenseNFT} from "./interfaces/ILicenseNFT.sol";
import {IReviewRegistry} from "./interfaces/IReviewRegistry.sol";

/// @title ReviewRegistry
/// @notice Ratings of models by the holders of their licences.
/// @dev Invariants: a licence is reviewed at most once, whoever holds it; for every model, `count` is
/// the number of `Reviewed` events and `sum` the sum of their ratings (each in 1..5).
/// NOTE: holding the licence token is what counts, so the holder of a lapsed rental may still review
/// it once; a licence terminated after a refund no longer exists and cannot be reviewed. The comment
/// CID may be empty (a rating without a comment). Sybil resistance (a creator buying licences of their
/// own model to rate it) is left to the off-chain reputation, which sees who paid whom.
contract ReviewRegistry is IReviewRegistry {
    // ---------------------------------------------------------------- types

    /// @dev Aggregate ratings of one model, packed into one slot.
    struct Rating {
        uint64 count;
        uint64 sum;
    }

    // ---------------------------------------------------------------- storage

    ILicenseNFT private immutable _licences;
    mapping(uint256 modelId => Rating) private _ratings;
    mapping(uint256 licenceId => bool) private _reviewed;

    // ---------------------------------------------------------------- constructor

    /// @param licences The LicenseNFT (an ERC-721 of licences).
    constructor(address licences) {
        if (licences == address(0)) revert ZeroAddress();
        _licences = ILicenseNFT(licences);
    }

    // ---------------------------------------------------------------- external

    /// @inheritdoc IReviewRegistry
    function review(uint256 licenceId, uint8 rating, string calldata commentCid) external {
        if (rating < 1 || rating > 5) revert InvalidRating(rating);
        if (_holderOrZero(licenceId) != msg.sender) revert NotLicenceHolder(licenceId, msg.sender);
        if (_reviewed[licenceId]) revert AlreadyReviewed(licenceId);
        uint256 modelId = _licences.licenceOf(licenceId).modelId;

        _reviewed[licenceId] = true;
        Rating storage r = _ratings[modelId];
        // NOTE: checked arithmetic kept: 2^64 ratings cannot happen, and the cost is a few gas.
        r.count += 1;
        r.sum += rating;
        emit Reviewed(modelId, licenceId, msg.sender, rating, commentCid);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IReviewRegistry
    function ratingOf(uint256 modelId) external view returns (uint64 count, uint64 sum) {
        Rating storage r = _ratings[modelId];
        return (r.count, r.sum);
    }

    /// @inheritdoc IReviewRegistry
    function reviewed(uint256 licenceId) external view returns (bool) {
        return _reviewed[licenceId];
    }

    /// @inheritdoc IReviewRegistry
    function licenceNFT() external view returns (address) {
        return address(_licences);
    }

    // ---------------------------------------------------------------- internal

    /// @dev The holder of `licenceId`, or the zero address if it does not exist (never minted or burned).
    function _holderOrZero(uint256 licenceId) internal view returns (address) {
        try _licences.ownerOf(licenceId) returns (address holder) {
            return holder;
        } catch {
            return address(0);
        }
    }
}
