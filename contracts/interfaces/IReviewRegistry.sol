// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IReviewRegistry
/// @notice Ratings from licence holders: 1 to 5 stars once per licence, with a comment stored by CID.
/// Aggregates (count, sum) live on chain; reputation is derived off chain by the catalog.
interface IReviewRegistry {
    /// @notice `caller` does not hold licence `licenceId` (or it does not exist).
    error NotLicenceHolder(uint256 licenceId, address caller);
    /// @notice Licence `licenceId` was reviewed already (by any of its holders).
    error AlreadyReviewed(uint256 licenceId);
    /// @notice A rating must be 1 to 5 stars.
    error InvalidRating(uint8 rating);
    /// @notice A constructor argument was the zero address.
    error ZeroAddress();

    /// @notice `reviewer`, holding licence `licenceId`, rated `modelId` `rating` stars (1 to 5); the
    /// comment is at `commentCid` (may be empty).
    event Reviewed(uint256 indexed modelId, uint256 indexed licenceId, address indexed reviewer, uint8 rating, string commentCid);

    /// @notice Rate the model of `licenceId`, which the caller holds; once per licence.
    function review(uint256 licenceId, uint8 rating, string calldata commentCid) external;
    /// @notice Number of ratings and their sum for `modelId`.
    function ratingOf(uint256 modelId) external view returns (uint64 count, uint64 sum);
    /// @notice Whether licence `licenceId` was reviewed already.
    function reviewed(uint256 licenceId) external view returns (bool);
    /// @notice The LicenseNFT whose holders may review.
    function licenceNFT() external view returns (address);
}
