// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ISessionRegistry} from "./interfaces/ISessionRegistry.sol";

/// @title SessionRegistry
/// @notice On-chain revocation of session keys, so every relayer honours a revocation (within its
/// documented cache window) without any shared server.
/// @dev Invariants: a revoked (holder, hash) stays revoked; a holder's nonce only goes up, by one per
/// `revokeAll`. No owner, no roles, no upgrade: each holder alone changes its own entries.
/// NOTE: a session's validity also needs its holder's signature, expiry, bounds and the holder's
/// access; those are checked off chain by relayers (`daimm.sessions`), which cost no gas per call.
contract SessionRegistry is ISessionRegistry, EIP712 {
    // ---------------------------------------------------------------- types

    bytes32 private constant SESSION_TYPEHASH = keccak256(
        "Session(address holder,address key,uint256 modelId,address relayer,uint64 expiresAt,uint64 maxCalls,uint128 spendCap,uint256 nonce)"
    );

    // ---------------------------------------------------------------- storage

    mapping(address holder => mapping(bytes32 sessionHash => bool)) private _revoked;
    mapping(address holder => uint256) private _nonces;

    // ---------------------------------------------------------------- constructor

    constructor() EIP712("daimm Sessions", "1") {}

    // ---------------------------------------------------------------- external

    /// @inheritdoc ISessionRegistry
    function revoke(bytes32 sessionHash) external {
        if (_revoked[msg.sender][sessionHash]) revert AlreadyRevoked(msg.sender, sessionHash);
        _revoked[msg.sender][sessionHash] = true;
        emit SessionRevoked(msg.sender, sessionHash);
    }

    /// @inheritdoc ISessionRegistry
    function revokeAll() external returns (uint256 nonce) {
        // NOTE: checked arithmetic kept: 2^256 transactions cannot happen, and the cost is a few gas.
        nonce = _nonces[msg.sender] + 1;
        _nonces[msg.sender] = nonce;
        emit SessionsRevokedAll(msg.sender, nonce);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ISessionRegistry
    function isRevoked(address holder, bytes32 sessionHash) external view returns (bool) {
        return _revoked[holder][sessionHash];
    }

    /// @inheritdoc ISessionRegistry
    function nonceOf(address holder) external view returns (uint256) {
        return _nonces[holder];
    }

    /// @inheritdoc ISessionRegistry
    function sessionState(address holder, bytes32 sessionHash) external view returns (bool revoked, uint256 nonce) {
        return (_revoked[holder][sessionHash], _nonces[holder]);
    }

    /// @inheritdoc ISessionRegistry
    function isLive(Session calldata session) external view returns (bool) {
        return !_revoked[session.holder][_sessionDigest(session)] && session.nonce == _nonces[session.holder];
    }

    /// @inheritdoc ISessionRegistry
    function sessionDigest(Session calldata session) external view returns (bytes32) {
        return _sessionDigest(session);
    }

    // ---------------------------------------------------------------- internal

    function _sessionDigest(Session calldata session) internal view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    SESSION_TYPEHASH,
                    session.holder,
                    session.key,
                    session.modelId,
                    session.relayer,
                    session.expiresAt,
                    session.maxCalls,
                    session.spendCap,
                    session.nonce
                )
            )
        );
    }
}
