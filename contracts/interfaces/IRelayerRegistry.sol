// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IRelayerRegistry
/// @notice Inference relayers and the models they may serve. An operator registers a relayer (its
/// signing address, its X25519 public key for key envelopes, its HTTPS endpoint) and can update or
/// retire it. A model's owner authorises relayers for that model, naming the CID of the key envelope
/// that wraps the model's content key for that relayer.
/// NOTE: at most `MAX_RELAYERS_PER_MODEL` relayers serve one model, so `relayersOf` is bounded.
interface IRelayerRegistry {
    struct Relayer {
        address operator;
        bytes32 x25519PublicKey;
        string endpoint;
        bool active;
    }

    error RelayerExists(address relayer);
    error UnknownRelayer(address relayer);
    error RelayerRetired(address relayer);
    error NotOperator(address relayer, address caller);
    error NotModelOwner(uint256 modelId, address caller);
    error AlreadyAuthorised(uint256 modelId, address relayer);
    error NotAuthorised(uint256 modelId, address relayer);
    error TooManyRelayers(uint256 modelId, uint256 max);
    error EmptyEndpoint();
    error EmptyCid();
    error ZeroKey();
    /// @notice The zero address was given as a relayer.
    error ZeroAddress();
    /// @notice `caller` may not register `relayer`: the relayer address must register itself or first
    /// name `caller` as its operator with `approveOperator`.
    error NoRelayerConsent(address relayer, address caller);

    /// @notice The relayer address `relayer` consented to be registered by `operator` (zero: consent withdrawn).
    event OperatorApproved(address indexed relayer, address indexed operator);
    event RelayerRegistered(address indexed relayer, address indexed operator, bytes32 x25519PublicKey, string endpoint);
    event RelayerUpdated(address indexed relayer, bytes32 x25519PublicKey, string endpoint);
    event RelayerRetiredEvent(address indexed relayer);
    event RelayerAuthorised(uint256 indexed modelId, address indexed relayer, string envelopeCid);
    event EnvelopeUpdated(uint256 indexed modelId, address indexed relayer, string envelopeCid);
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

    function relayerOf(address relayer) external view returns (Relayer memory);
    /// @notice Whether `relayer` is active and authorised for `modelId` by the model's current owner.
    function isAuthorised(uint256 modelId, address relayer) external view returns (bool);
    function envelopeOf(uint256 modelId, address relayer) external view returns (string memory);
    /// @notice The relayers holding one of `modelId`'s slots (at most `MAX_RELAYERS_PER_MODEL`), in no
    /// particular order. Includes retired relayers and ones authorised by a previous owner until the
    /// owner deauthorises them: filter with `isAuthorised`.
    function relayersOf(uint256 modelId) external view returns (address[] memory);
    function MAX_RELAYERS_PER_MODEL() external view returns (uint256);
    /// @notice The ModelRegistry whose token owners authorise relayers.
    function modelRegistry() external view returns (address);
}
