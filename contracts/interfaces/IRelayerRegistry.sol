// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IRelayerRegistry
/// @notice Inference relayers and the models they may serve. An operator registers a relayer (its
/// signing address, its X25519 public key for key envelopes, its HTTPS endpoint) and can update or
/// retire it. A model's owner authorises relayers for that model, naming the CID of the key envelope
/// that wraps the model's content key for that relayer.
/// NOTE: at most `MAX_RELAYERS_PER_MODEL` relayers serve one model, so `relayersOf` is bounded.
interface IRelayerRegistry {
    /// @notice A registered relayer.
    /// @param operator The account that registered it and alone may update or retire it.
    /// @param x25519PublicKey The key that model owners wrap content keys for (key envelopes).
    /// @param endpoint The relayer's HTTPS endpoint.
    /// @param active False once retired (for good).
    struct Relayer {
        address operator;
        bytes32 x25519PublicKey;
        string endpoint;
        bool active;
    }

    /// @notice `relayer` is registered already.
    error RelayerExists(address relayer);
    /// @notice `relayer` was never registered.
    error UnknownRelayer(address relayer);
    /// @notice `relayer` is retired: it cannot be updated, authorised or given an envelope.
    error RelayerRetired(address relayer);
    /// @notice `caller` is not the operator of `relayer`.
    error NotOperator(address relayer, address caller);
    /// @notice `caller` does not own model `modelId` (or it does not exist).
    error NotModelOwner(uint256 modelId, address caller);
    /// @notice The model's current owner already authorised `relayer` for `modelId`.
    error AlreadyAuthorised(uint256 modelId, address relayer);
    /// @notice `relayer` holds no slot for `modelId` (or, for `setEnvelope`, not one given by the current owner).
    error NotAuthorised(uint256 modelId, address relayer);
    /// @notice `modelId` already has `max` relayer slots (`MAX_RELAYERS_PER_MODEL`).
    error TooManyRelayers(uint256 modelId, uint256 max);
    /// @notice The endpoint was empty.
    error EmptyEndpoint();
    /// @notice The envelope CID was empty.
    error EmptyCid();
    /// @notice The X25519 public key was zero.
    error ZeroKey();
    /// @notice The zero address was given as a relayer.
    error ZeroAddress();
    /// @notice `caller` may not register `relayer`: the relayer address must register itself or first
    /// name `caller` as its operator with `approveOperator`.
    error NoRelayerConsent(address relayer, address caller);

    /// @notice The relayer address `relayer` consented to be registered by `operator` (zero: consent withdrawn).
    event OperatorApproved(address indexed relayer, address indexed operator);
    /// @notice `operator` registered `relayer` with its key and endpoint.
    event RelayerRegistered(address indexed relayer, address indexed operator, bytes32 x25519PublicKey, string endpoint);
    /// @notice The operator of `relayer` changed its key or endpoint (existing envelopes are not re-wrapped).
    event RelayerUpdated(address indexed relayer, bytes32 x25519PublicKey, string endpoint);
    /// @notice `relayer` was retired for good: it serves no model any more.
    event RelayerRetiredEvent(address indexed relayer);
    /// @notice The owner of `modelId` authorised `relayer` for it, with the CID of its key envelope.
    event RelayerAuthorised(uint256 indexed modelId, address indexed relayer, string envelopeCid);
    /// @notice The owner of `modelId` published a new key envelope CID for `relayer`.
    event EnvelopeUpdated(uint256 indexed modelId, address indexed relayer, string envelopeCid);
    /// @notice The owner of `modelId` withdrew `relayer`'s slot.
    event RelayerDeauthorised(uint256 indexed modelId, address indexed relayer);

    /// @notice As the relayer address, consent to `operator` registering it (the zero address withdraws
    /// consent). Not needed when the relayer address registers itself.
    function approveOperator(address operator) external;
    /// @notice The operator the relayer address `relayer` consented to, or the zero address.
    function approvedOperatorOf(address relayer) external view returns (address);
    /// @notice Register `relayer` with the caller as its operator. The caller must be `relayer` itself
    /// or the operator `relayer` approved (so nobody can squat another party's relayer address).
    function register(address relayer, bytes32 x25519PublicKey, string calldata endpoint) external;
    /// @notice Change a relayer's key or endpoint; operator only.
    function update(address relayer, bytes32 x25519PublicKey, string calldata endpoint) external;
    /// @notice Retire a relayer for good; operator only. Retired relayers serve no model.
    function retire(address relayer) external;

    /// @notice Authorise `relayer` for `modelId` with the CID of its key envelope; model owner only.
    function authorise(uint256 modelId, address relayer, string calldata envelopeCid) external;
    /// @notice Publish a new key envelope CID for an authorised relayer; model owner only.
    function setEnvelope(uint256 modelId, address relayer, string calldata envelopeCid) external;
    /// @notice Withdraw `relayer`'s authorisation for `modelId`; model owner only.
    function deauthorise(uint256 modelId, address relayer) external;

    /// @notice The record of `relayer` (all zero, `operator` included, if it was never registered).
    function relayerOf(address relayer) external view returns (Relayer memory);
    /// @notice Whether `relayer` is active and authorised for `modelId` by the model's current owner.
    function isAuthorised(uint256 modelId, address relayer) external view returns (bool);
    /// @notice The CID of `relayer`'s key envelope for `modelId`, or the empty string unless
    /// `isAuthorised(modelId, relayer)`.
    function envelopeOf(uint256 modelId, address relayer) external view returns (string memory);
    /// @notice The relayers holding one of `modelId`'s slots (at most `MAX_RELAYERS_PER_MODEL`), in no
    /// particular order. Includes retired relayers and ones authorised by a previous owner until the
    /// owner deauthorises them: filter with `isAuthorised`.
    function relayersOf(uint256 modelId) external view returns (address[] memory);
    /// @notice Most relayer slots one model has (bounds `relayersOf`).
    function MAX_RELAYERS_PER_MODEL() external view returns (uint256);
    /// @notice The ModelRegistry whose token owners authorise relayers.
    function modelRegistry() external view returns (address);
}
