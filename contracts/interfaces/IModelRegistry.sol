// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title IModelRegistry
/// @notice One ERC-721 token per AI model, minted to its creator. A model has an append-only version
/// history; each version names the IPFS CID of its encrypted weights and of its metadata document.
/// Whoever owns the token owns the model: future revenue, versions, terms and royalty.
/// IMPORTANT: CIDs are stored as given (strings such as `bafy...` or `Qm...`); the registry does not
/// check that they resolve. Clients verify content against the CID they read here.
interface IModelRegistry is IERC2981, IERC721 {
    /// @notice One published version of a model.
    /// @param weightsCid CID of the encrypted weights (daimm AEAD format).
    /// @param metadataCid CID of the metadata JSON document.
    /// @param publishedAt Block timestamp of publication, in seconds.
    struct Version {
        string weightsCid;
        string metadataCid;
        uint64 publishedAt;
    }

    /// @notice The caller does not own model `modelId`.
    error NotModelOwner(uint256 modelId, address caller);
    /// @notice Model `modelId` has not been minted.
    error UnknownModel(uint256 modelId);
    /// @notice A CID argument was empty.
    error EmptyCid();
    /// @notice `bps` exceeds the royalty cap `maxBps`.
    error RoyaltyTooHigh(uint96 bps, uint96 maxBps);
    /// @notice Version `version` of model `modelId` does not exist.
    error UnknownVersion(uint256 modelId, uint256 version);

    /// @notice A model was minted to `creator`, with version 0.
    event ModelPublished(uint256 indexed modelId, address indexed creator, string weightsCid, string metadataCid);
    /// @notice Version `version` of model `modelId` was published.
    event VersionPublished(uint256 indexed modelId, uint256 indexed version, string weightsCid, string metadataCid);
    /// @notice The ERC-2981 royalty of model `modelId` was set to `bps` basis points.
    event RoyaltySet(uint256 indexed modelId, uint96 bps);

    /// @notice Mint a new model to the caller with its first version.
    /// @param weightsCid CID of the encrypted weights.
    /// @param metadataCid CID of the metadata document (`ipfs://<cid>` is the token URI).
    /// @param royaltyBps ERC-2981 royalty on licence resales, in basis points (capped).
    /// @return modelId The new model's token id (ids start at 1).
    function publishModel(string calldata weightsCid, string calldata metadataCid, uint96 royaltyBps)
        external
        returns (uint256 modelId);

    /// @notice Append a version; only the model's owner may.
    /// @return version The new version's index (the first version is 0).
    function publishVersion(uint256 modelId, string calldata weightsCid, string calldata metadataCid)
        external
        returns (uint256 version);

    /// @notice Set the royalty on licence resales; only the model's owner may. Capped at `MAX_ROYALTY_BPS`.
    function setRoyalty(uint256 modelId, uint96 bps) external;

    /// @notice The royalty of `modelId` on licence resales, in basis points; reverts `UnknownModel` if
    /// it was never minted.
    function royaltyBpsOf(uint256 modelId) external view returns (uint96);

    /// @notice The royalty cap, in basis points (1,000 = 10%).
    function MAX_ROYALTY_BPS() external view returns (uint96);

    /// @notice Number of versions of `modelId` (at least 1 for a minted model).
    function versionCount(uint256 modelId) external view returns (uint256);

    /// @notice Version `version` of `modelId`.
    function versionOf(uint256 modelId, uint256 version) external view returns (Version memory);

    /// @notice The latest version of `modelId`.
    function latestVersion(uint256 modelId) external view returns (Version memory);

    /// @notice Whether `modelId` has been minted.
    function exists(uint256 modelId) external view returns (bool);

    /// @notice Number of models minted so far (the highest model id).
    function modelCount() external view returns (uint256);
}
