// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title PayeeSets
/// @notice Who shares a held payment, as one uint256. Below 2**160 a payee set is the single address
/// `uint160(payeeSet)` (a model's owner when it has no split, a reseller, a royalty receiver); from
/// 2**160 up it names an immutable split stored by the escrow: `2**160 + (modelId << 32) + nonce`.
library PayeeSets {
    /// @notice The first split id.
    uint256 internal constant SPLIT_BASE = 1 << 160;

    /// @notice The payee set of one account.
    function single(address account) internal pure returns (uint256) {
        return uint256(uint160(account));
    }

    /// @notice The id of split number `nonce` (from 1) of `modelId` (below 2**128).
    function splitId(uint256 modelId, uint256 nonce) internal pure returns (uint256) {
        return SPLIT_BASE + (modelId << 32) + nonce;
    }

    /// @notice Whether `payeeSet` names a stored split rather than one address.
    function isSplit(uint256 payeeSet) internal pure returns (bool) {
        return payeeSet >= SPLIT_BASE;
    }

    /// @notice The account of a single-address payee set.
    function account(uint256 payeeSet) internal pure returns (address) {
        return address(uint160(payeeSet));
    }
}
