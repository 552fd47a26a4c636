// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IERC4907 (the read side)
/// @notice Rental-aware views of ERC-4907, so wallets and marketplaces understand a licence's user and
/// expiry. daimm licences are rented through the escrow, so `setUser` is not offered: the holder of
/// the licence token is its user.
interface IERC4907 {
    /// @notice Emitted when the user or expiry of a token changes.
    event UpdateUser(uint256 indexed tokenId, address indexed user, uint64 expires);

    /// @notice The current user of `tokenId`, or the zero address once a rental has expired.
    function userOf(uint256 tokenId) external view returns (address);

    /// @notice The end of `tokenId`'s rental in seconds; `type(uint64).max` for a perpetual licence.
    function userExpires(uint256 tokenId) external view returns (uint256);
}
