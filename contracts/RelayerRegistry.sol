// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";

/// @title RelayerRegistry
/// @notice Inference relayers and the models each may serve.
/// @dev Invariants:
/// - a model never has more than `MAX_RELAYERS_PER_MODEL` slots, so every loop here is bounded;
/// - `_slots[modelId][relayer].position` is the 1-based index of `relayer` in `_relayersOf[modelId]`,
///   and 0 exactly when `relayer` holds no slot for `modelId`;
/// - `isAuthorised` is true only while the relayer is active and the model's current owner is the one
///   who authorised it: a model that changes hands serves through no relayer until its new owner
///   authorises again.
/// IMPORTANT: only the relayer address itself, or the operator it approved with `approveOperator`,
/// can register it, so nobody can squat another party's relayer address with their own X25519 key.
/// The operator then chooses the key that envelopes are wrapped for: a model owner still checks a
/// relayer's `operator` (and key) before authorising it and wrapping the model's content key for it.
/// NOTE: an operator's `update` of the X25519 key does not re-wrap existing envelopes: the model owner
/// publishes a new one with `setEnvelope`.
contract RelayerRegistry is IRelayerRegistry {
    // ---------------------------------------------------------------- types

    /// @dev One relayer's slot for one model.
    /// @param authorisedBy The model owner who gave the authorisation.
    /// @param position 1-based index in `_relayersOf[modelId]`; 0 = no slot.
    /// @param envelopeCid CID of the key envelope wrapping the model's content key for the relayer.
    struct Slot {
        address authorisedBy;
        uint96 position;
        string envelopeCid;
    }

    // ---------------------------------------------------------------- storage

    /// @inheritdoc IRelayerRegistry
    uint256 public constant MAX_RELAYERS_PER_MODEL = 16;

    IERC721 private immutable _models;
    mapping(address relayer => Relayer) private _relayers;
    mapping(address relayer => address operator) private _approvedOperator;
    mapping(uint256 modelId => address[]) private _relayersOf;
    mapping(uint256 modelId => mapping(address relayer => Slot)) private _slots;

    // ---------------------------------------------------------------- constructor

    /// @param models The ModelRegistry (an ERC-721 whose token owners own the models).
    constructor(address models) {
        if (models == address(0)) revert ZeroAddress();
        _models = IERC721(models);
    }

    // ---------------------------------------------------------------- external: operators

    /// @inheritdoc IRelayerRegistry
    function approveOperator(address operator) external {
        _approvedOperator[msg.sender] = operator;
        emit OperatorApproved(msg.sender, operator);
    }

    /// @inheritdoc IRelayerRegistry
    function register(address relayer, bytes32 x25519PublicKey, string calldata endpoint) external {
        if (relayer == address(0)) revert ZeroAddress();
        if (msg.sender != relayer && _approvedOperator[relayer] != msg.sender) {
            revert NoRelayerConsent(relayer, msg.sender);
        }
        if (_relayers[relayer].operator != address(0)) revert RelayerExists(relayer);
        _checkDetails(x25519PublicKey, endpoint);
        _relayers[relayer] = Relayer({operator: msg.sender, x25519PublicKey: x25519PublicKey, endpoint: endpoint, active: true});
        emit RelayerRegistered(relayer, msg.sender, x25519PublicKey, endpoint);
    }

    /// @inheritdoc IRelayerRegistry
    function update(address relayer, bytes32 x25519PublicKey, string calldata endpoint) external {
        Relayer storage r = _operatedLive(relayer);
        _checkDetails(x25519PublicKey, endpoint);
        r.x25519PublicKey = x25519PublicKey;
        r.endpoint = endpoint;
        emit RelayerUpdated(relayer, x25519PublicKey, endpoint);
    }

    /// @inheritdoc IRelayerRegistry
    function retire(address relayer) external {
        Relayer storage r = _operatedLive(relayer);
        r.active = false;
        emit RelayerRetiredEvent(relayer);
    }

    // ---------------------------------------------------------------- external: model owners

    /// @inheritdoc IRelayerRegistry
    function authorise(uint256 modelId, address relayer, string calldata envelopeCid) external {
        address owner = _requireModelOwner(modelId);
        Relayer storage r = _relayers[relayer];
        if (r.operator == address(0)) revert UnknownRelayer(relayer);
        if (!r.active) revert RelayerRetired(relayer);
        if (bytes(envelopeCid).length == 0) revert EmptyCid();

        Slot storage slot = _slots[modelId][relayer];
        if (slot.position == 0) {
            address[] storage list = _relayersOf[modelId];
            if (list.length >= MAX_RELAYERS_PER_MODEL) revert TooManyRelayers(modelId, MAX_RELAYERS_PER_MODEL);
            list.push(relayer);
            // NOTE: the cast cannot truncate: the list never holds more than MAX_RELAYERS_PER_MODEL.
            slot.position = uint96(list.length);
        } else if (slot.authorisedBy == owner) {
            revert AlreadyAuthorised(modelId, relayer);
        }
        // A slot left by a previous owner is taken over: same position, new owner and envelope.
        slot.authorisedBy = owner;
        slot.envelopeCid = envelopeCid;
        emit RelayerAuthorised(modelId, relayer, envelopeCid);
    }

    /// @inheritdoc IRelayerRegistry
    function setEnvelope(uint256 modelId, address relayer, string calldata envelopeCid) external {
        address owner = _requireModelOwner(modelId);
        Slot storage slot = _slots[modelId][relayer];
        if (slot.position == 0 || slot.authorisedBy != owner) revert NotAuthorised(modelId, relayer);
        if (!_relayers[relayer].active) revert RelayerRetired(relayer);
        if (bytes(envelopeCid).length == 0) revert EmptyCid();
        slot.envelopeCid = envelopeCid;
        emit EnvelopeUpdated(modelId, relayer, envelopeCid);
    }

    /// @inheritdoc IRelayerRegistry
    /// @dev Also frees slots held by retired relayers or authorised by a previous owner.
    function deauthorise(uint256 modelId, address relayer) external {
        _requireModelOwner(modelId);
        uint256 position = _slots[modelId][relayer].position;
        if (position == 0) revert NotAuthorised(modelId, relayer);

        // Swap and pop: the last relayer moves into the freed position.
        address[] storage list = _relayersOf[modelId];
        uint256 last = list.length;
        if (position != last) {
            address moved = list[last - 1];
            list[position - 1] = moved;
            _slots[modelId][moved].position = uint96(position);
        }
        list.pop();
        delete _slots[modelId][relayer];
        emit RelayerDeauthorised(modelId, relayer);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IRelayerRegistry
    /// @dev An unknown relayer reads as the zero record (`operator == address(0)`).
    function relayerOf(address relayer) external view returns (Relayer memory) {
        return _relayers[relayer];
    }

    /// @inheritdoc IRelayerRegistry
    function approvedOperatorOf(address relayer) external view returns (address) {
        return _approvedOperator[relayer];
    }

    /// @inheritdoc IRelayerRegistry
    function isAuthorised(uint256 modelId, address relayer) public view returns (bool) {
        Slot storage slot = _slots[modelId][relayer];
        if (slot.position == 0 || !_relayers[relayer].active) return false;
        return slot.authorisedBy == _ownerOrZero(modelId);
    }

    /// @inheritdoc IRelayerRegistry
    /// @dev The empty string unless `isAuthorised(modelId, relayer)`.
    function envelopeOf(uint256 modelId, address relayer) external view returns (string memory) {
        return isAuthorised(modelId, relayer) ? _slots[modelId][relayer].envelopeCid : "";
    }

    /// @inheritdoc IRelayerRegistry
    function relayersOf(uint256 modelId) external view returns (address[] memory) {
        return _relayersOf[modelId];
    }

    /// @inheritdoc IRelayerRegistry
    function modelRegistry() external view returns (address) {
        return address(_models);
    }

    // ---------------------------------------------------------------- internal

    /// @dev The caller's operated relayer record, which must exist and be active.
    function _operatedLive(address relayer) internal view returns (Relayer storage r) {
        r = _relayers[relayer];
        if (r.operator == address(0)) revert UnknownRelayer(relayer);
        if (r.operator != msg.sender) revert NotOperator(relayer, msg.sender);
        if (!r.active) revert RelayerRetired(relayer);
    }

    /// @dev Reverts `NotModelOwner` unless the caller owns `modelId` (unminted models have no owner).
    function _requireModelOwner(uint256 modelId) internal view returns (address owner) {
        owner = _ownerOrZero(modelId);
        if (owner != msg.sender || owner == address(0)) revert NotModelOwner(modelId, msg.sender);
    }

    /// @dev The owner of `modelId`, or the zero address if it was never minted (or was burned).
    function _ownerOrZero(uint256 modelId) internal view returns (address) {
        try _models.ownerOf(modelId) returns (address owner) {
            return owner;
        } catch {
            return address(0);
        }
    }

    // ---------------------------------------------------------------- private

    function _checkDetails(bytes32 x25519PublicKey, string calldata endpoint) private pure {
        if (x25519PublicKey == bytes32(0)) revert ZeroKey();
        if (bytes(endpoint).length == 0) revert EmptyEndpoint();
    }
}
