// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";
import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

import {IModelRegistry} from "./interfaces/IModelRegistry.sol";

/// @title ModelRegistry
/// @notice One ERC-721 token per AI model, minted to its creator, with an append-only version history.
/// @dev Invariants: model ids are 1..modelCount with no gaps; every minted model has at least one
/// version; versions are never changed or removed; the royalty never exceeds `MAX_ROYALTY_BPS` and its
/// receiver is always the model's current owner.
/// IMPORTANT: ERC-2981 only signals a royalty. The RentalEscrow pays it on licence resales; plain
/// transfers of licences elsewhere pay nothing.
contract ModelRegistry is ERC721, ERC2981, IModelRegistry {
    // ---------------------------------------------------------------- storage
    /// @inheritdoc IModelRegistry
    uint96 public constant MAX_ROYALTY_BPS = 1_000;

    uint256 private _modelCount;
    mapping(uint256 modelId => Version[]) private _versions;
    mapping(uint256 modelId => uint96 bps) private _royaltyBps;

    // ---------------------------------------------------------------- constructor
    constructor() ERC721("daimm AI Model", "DAIMM-MODEL") {}

    // ---------------------------------------------------------------- external
    /// @inheritdoc IModelRegistry
    function publishModel(string calldata weightsCid, string calldata metadataCid, uint96 royaltyBps)
        external
        returns (uint256 modelId)
    {
        _checkCids(weightsCid, metadataCid);
        _checkRoyalty(royaltyBps);
        unchecked {
            // A uint256 counter incremented once per transaction cannot overflow.
            modelId = ++_modelCount;
        }
        _versions[modelId].push(Version(weightsCid, metadataCid, uint64(block.timestamp)));
        _royaltyBps[modelId] = royaltyBps;
        // NOTE: `_mint`, not `_safeMint`: the creator is the caller, so no receiver check is needed and
        // no callback runs before the events below.
        _mint(msg.sender, modelId);
        emit ModelPublished(modelId, msg.sender, weightsCid, metadataCid);
        emit RoyaltySet(modelId, royaltyBps);
    }

    /// @inheritdoc IModelRegistry
    function publishVersion(uint256 modelId, string calldata weightsCid, string calldata metadataCid)
        external
        returns (uint256 version)
    {
        _checkOwner(modelId);
        _checkCids(weightsCid, metadataCid);
        Version[] storage versions = _versions[modelId];
        version = versions.length;
        versions.push(Version(weightsCid, metadataCid, uint64(block.timestamp)));
        emit VersionPublished(modelId, version, weightsCid, metadataCid);
    }

    /// @inheritdoc IModelRegistry
    function setRoyalty(uint256 modelId, uint96 bps) external {
        _checkOwner(modelId);
        _checkRoyalty(bps);
        _royaltyBps[modelId] = bps;
        emit RoyaltySet(modelId, bps);
    }

    // ---------------------------------------------------------------- view
    /// @notice ERC-2981: the royalty on a licence resale of `salePrice`; the receiver is the model's
    /// current owner, so a model sold with its token takes its royalty with it.
    /// @param tokenId The model id.
    /// @param salePrice Sale price, in the currency's smallest unit.
    /// @return receiver The model's current owner.
    /// @return royaltyAmount `salePrice * bps / 10,000`, rounded down.
    function royaltyInfo(uint256 tokenId, uint256 salePrice)
        public
        view
        override(ERC2981, IERC2981)
        returns (address receiver, uint256 royaltyAmount)
    {
        receiver = _ownerOf(tokenId);
        if (receiver == address(0)) revert UnknownModel(tokenId);
        royaltyAmount = (salePrice * _royaltyBps[tokenId]) / _feeDenominator();
    }

    /// @inheritdoc IModelRegistry
    function royaltyBpsOf(uint256 modelId) external view returns (uint96) {
        _requireModel(modelId);
        return _royaltyBps[modelId];
    }

    /// @notice `ipfs://<metadataCid of the latest version>`.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireModel(tokenId);
        Version[] storage versions = _versions[tokenId];
        return string.concat("ipfs://", versions[versions.length - 1].metadataCid);
    }

    /// @inheritdoc IModelRegistry
    function versionCount(uint256 modelId) external view returns (uint256) {
        _requireModel(modelId);
        return _versions[modelId].length;
    }

    /// @inheritdoc IModelRegistry
    function versionOf(uint256 modelId, uint256 version) external view returns (Version memory) {
        _requireModel(modelId);
        Version[] storage versions = _versions[modelId];
        if (version >= versions.length) revert UnknownVersion(modelId, version);
        return versions[version];
    }

    /// @inheritdoc IModelRegistry
    function latestVersion(uint256 modelId) external view returns (Version memory) {
        _requireModel(modelId);
        Version[] storage versions = _versions[modelId];
        return versions[versions.length - 1];
    }

    /// @inheritdoc IModelRegistry
    function exists(uint256 modelId) external view returns (bool) {
        return _ownerOf(modelId) != address(0);
    }

    /// @inheritdoc IModelRegistry
    function modelCount() external view returns (uint256) {
        return _modelCount;
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, ERC2981, IERC165) returns (bool) {
        return interfaceId == type(IModelRegistry).interfaceId || super.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- private
    function _checkOwner(uint256 modelId) private view {
        address owner = _ownerOf(modelId);
        if (owner == address(0)) revert UnknownModel(modelId);
        if (owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
    }

    function _requireModel(uint256 modelId) private view {
        if (_ownerOf(modelId) == address(0)) revert UnknownModel(modelId);
    }

    function _checkRoyalty(uint96 bps) private pure {
        if (bps > MAX_ROYALTY_BPS) revert RoyaltyTooHigh(bps, MAX_ROYALTY_BPS);
    }

    function _checkCids(string calldata weightsCid, string calldata metadataCid) private pure {
        if (bytes(weightsCid).length == 0 || bytes(metadataCid).length == 0) revert EmptyCid();
    }
}
