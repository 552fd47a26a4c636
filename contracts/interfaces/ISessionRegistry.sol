// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ISessionRegistry
/// @notice Revocation of session keys. A licence holder signs an EIP-712 `Session` off chain (domain
/// name "daimm Sessions", version "1", this contract as verifying contract) that lets a session key sign
/// requests to relayers within bounds; the holder revokes one session by its hash, or every session
/// signed so far by bumping a nonce. Relayers read `sessionState` (cached for their documented TTL, and
/// dropped at once when they see `SessionRevoked` or `SessionsRevokedAll`).
/// IMPORTANT: nothing here checks a session's signature or bounds: relayers do (and, for pay-per-use
/// spend, the escrow: see docs/CONTRACTS-EXT.md). Revoking a hash nobody signed is harmless.
interface ISessionRegistry {
    /// @notice A session: `key` may sign requests for `holder`.
    /// @param holder The wallet holding the licence, rental or credit; it signs the session.
    /// @param key The session key's address.
    /// @param modelId The one model covered, or 0 for any model.
    /// @param relayer The one relayer covered, or the zero address for any.
    /// @param expiresAt Unix time in seconds from which the session is refused.
    /// @param maxCalls Most calls each relayer serves on the session.
    /// @param spendCap Most pay-per-use value the session may spend, in the currency's smallest unit.
    /// @param nonce The holder's `nonceOf` when signing; `revokeAll` makes every lower nonce invalid.
    struct Session {
        address holder;
        address key;
        uint256 modelId;
        address relayer;
        uint64 expiresAt;
        uint64 maxCalls;
        uint128 spendCap;
        uint256 nonce;
    }

    /// @notice The session `sessionHash` was revoked already by `holder`.
    error AlreadyRevoked(address holder, bytes32 sessionHash);

    /// @notice `holder` revoked the session whose EIP-712 digest is `sessionHash`.
    event SessionRevoked(address indexed holder, bytes32 indexed sessionHash);
    /// @notice `holder` revoked every session signed with a nonce below `nonce` (its new nonce).
    event SessionsRevokedAll(address indexed holder, uint256 nonce);

    /// @notice Revoke the caller's session whose EIP-712 digest (`sessionDigest`) is `sessionHash`.
    /// @dev Keyed by (caller, hash): only a session's holder can revoke it, since the digest names the
    /// holder and relayers look revocations up under the session's holder.
    function revoke(bytes32 sessionHash) external;
    /// @notice Revoke every session the caller has signed so far: its nonce goes up by one, and only
    /// sessions carrying the new nonce are valid.
    /// @return nonce The caller's new nonce.
    function revokeAll() external returns (uint256 nonce);
    /// @notice Whether `holder` revoked the session `sessionHash` (by `revoke`; see also `nonceOf`).
    function isRevoked(address holder, bytes32 sessionHash) external view returns (bool);
    /// @notice The nonce `holder`'s new sessions must carry (0 until the first `revokeAll`).
    function nonceOf(address holder) external view returns (uint256);
    /// @notice Both answers a relayer needs in one call: whether `holder` revoked `sessionHash`, and
    /// `holder`'s current nonce.
    function sessionState(address holder, bytes32 sessionHash) external view returns (bool revoked, uint256 nonce);
    /// @notice Whether `session` is neither revoked nor signed under an old nonce (its signature,
    /// expiry and bounds are not checked here).
    function isLive(Session calldata session) external view returns (bool);
    /// @notice The EIP-712 digest of `session` in this contract's domain: the hash `revoke` takes.
    function sessionDigest(Session calldata session) external view returns (bytes32);
}
