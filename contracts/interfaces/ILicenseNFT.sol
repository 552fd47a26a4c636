// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title ILicenseNFT
/// @notice ERC-721 licences to use a model, minted only by the marketplace (`marketplace()`). A licence
/// names its model, its kind and, for a rental, its expiry. The relayer asks `hasAccess`.
/// IMPORTANT: no one (not the model owner, not the admin) can revoke or burn a licence that was paid
/// for; only the escrow may end one, and only when an arbiter refunds its payment in full.
/// NOTE: a plain ERC-721 transfer moves the licence and its access to the receiver with no royalty
/// (ERC-2981 only signals); resales through the escrow pay the royalty.
interface ILicenseNFT is IERC721 {
    /// @notice Kind of licence.
    enum Kind {
        Rental,
        Perpetual
    }

    /// @notice A licence as `licenceOf` returns it (a view: LicenseNFT stores the model, kind and
    /// transfer count with the holder in one slot, and a rental's expiry in its holder's access slot).
    /// @param modelId The licensed model.
    /// @param expires End of the rental in seconds; `type(uint64).max` for a perpetual licence.
    /// @param kind Rental or perpetual.
    /// @param transfers How many times the licence has changed holder since it was minted (see
    /// `transfersOf`).
    struct Licence {
        uint128 modelId;
        uint64 expires;
        Kind kind;
        uint48 transfers;
    }

    // ---------------------------------------------------------------- errors
    /// @notice `caller` is not the marketplace, the only account that mints, extends, locks and
    /// terminates licences.
    error NotMarketplace(address caller);
    /// @notice The marketplace given at deployment is the zero address.
    error ZeroMarketplace();
    /// @notice Licence `licenceId` does not exist (never minted, or terminated).
    error UnknownLicence(uint256 licenceId);
    /// @notice `account` already holds rental `licenceId` for `modelId`; an account holds at most one
    /// rental per model (so `rentalOf` is a single id), so a second one cannot be minted or sent to it.
    error RentalAlreadyHeld(uint256 modelId, address account, uint256 licenceId);
    /// @notice Licence `licenceId` is locked by an open dispute: it cannot move or be extended.
    error LicenceLocked(uint256 licenceId);
    /// @notice Licence `licenceId` is not locked, so it cannot be unlocked.
    error LicenceNotLocked(uint256 licenceId);

    // ---------------------------------------------------------------- events
    /// @notice Licence `licenceId` of model `modelId` was minted to `holder`.
    /// @param kind Rental or perpetual.
    /// @param expires End of the rental, in seconds; `type(uint64).max` for a perpetual licence.
    event LicenceMinted(uint256 indexed licenceId, uint256 indexed modelId, address indexed holder, Kind kind, uint64 expires);
    /// @notice Rental `licenceId` of model `modelId` was extended to end at `expires` (seconds).
    event LicenceExtended(uint256 indexed licenceId, uint256 indexed modelId, uint64 expires);
    /// @notice Licence `licenceId` was locked (`locked`) by an open dispute, or unlocked when it was resolved.
    event LicenceLockSet(uint256 indexed licenceId, bool locked);
    /// @notice Licence `licenceId` of model `modelId` was ended by the escrow after a full refund.
    event LicenceTerminated(uint256 indexed licenceId, uint256 indexed modelId);

    // ---------------------------------------------------------------- marketplace
    /// @notice Mint a perpetual licence for `modelId` to `holder`; marketplace only (a perpetual
    /// purchase). Rentals are minted by `mintOrExtendRental`.
    /// @return licenceId The new licence (ids count up from 1).
    function mintPerpetualLicence(address holder, uint256 modelId) external returns (uint256 licenceId);

    /// @notice Extend `holder`'s rental of `modelId` by `duration` seconds from its expiry (or from now
    /// if it has lapsed), or mint one ending `duration` seconds from now if `holder` has none;
    /// marketplace only. Reverts `LicenceLocked` while a dispute over the rental is open.
    /// @param duration Rental time bought, in seconds.
    /// @return licenceId The rental licence (new or existing).
    /// @return expires Its new expiry, in seconds.
    function mintOrExtendRental(address holder, uint256 modelId, uint64 duration)
        external
        returns (uint256 licenceId, uint64 expires);

    /// @notice End a licence whose payment was refunded in full; marketplace only.
    function terminate(uint256 licenceId) external;

    /// @notice Lock (while a dispute over its payment is open) or unlock licence `licenceId`; marketplace
    /// only. A locked licence keeps its access but cannot be transferred or extended. Reverts
    /// `LicenceLocked` when locking a locked licence and `LicenceNotLocked` when unlocking an unlocked one.
    function setLocked(uint256 licenceId, bool locked) external;

    // ---------------------------------------------------------------- views
    /// @notice The marketplace (the RentalEscrow): the only account that mints, extends, locks and
    /// terminates licences. Fixed at deployment.
    function marketplace() external view returns (address);

    /// @notice Whether licence `licenceId` is locked by an open dispute.
    function isLocked(uint256 licenceId) external view returns (bool);

    /// @notice Whether `account` may use `modelId` now: it holds a perpetual licence or an unexpired
    /// rental for it.
    function hasAccess(uint256 modelId, address account) external view returns (bool);

    /// @notice The licence record of `licenceId`; reverts `UnknownLicence` if it does not exist.
    function licenceOf(uint256 licenceId) external view returns (Licence memory);

    /// @notice How many times licence `licenceId` has changed holder since it was minted: every
    /// transfer (plain ERC-721 or a resale through the escrow) adds one; minting does not. Together
    /// with the holder it names one holding of the licence, so a marketplace listing made by a holder
    /// can tell that the licence left and came back (the escrow's listings record it and die when it
    /// changes). Reverts with `UnknownLicence` if the licence does not exist (never minted or
    /// terminated).
    function transfersOf(uint256 licenceId) external view returns (uint256);

    /// @notice The rental licence `account` holds for `modelId`, or 0 if none (used to extend instead
    /// of minting a second token).
    function rentalOf(uint256 modelId, address account) external view returns (uint256 licenceId);

    /// @notice Number of perpetual licences `account` holds for `modelId`.
    function perpetualCountOf(uint256 modelId, address account) external view returns (uint256);

    /// @notice Number of licences minted so far (the highest licence id; terminated ones included).
    function licenceCount() external view returns (uint256);
}
