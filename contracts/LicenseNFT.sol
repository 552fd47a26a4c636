// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IERC4907} from "./interfaces/IERC4907.sol";
import {ILicenseNFT} from "./interfaces/ILicenseNFT.sol";

/// @title LicenseNFT
/// @notice ERC-721 licences to use daimm models, minted by the marketplace fixed at deployment.
/// @dev Access is answered in O(1) from one slot per (model, account): the number of perpetual
/// licences the account holds for the model, and its single rental licence with that rental's expiry.
/// Invariants:
/// - `_access[m][a].perpetualCount` equals the number of perpetual licences of model `m` owned by `a`;
/// - `_access[m][a].rentalId` is the only rental licence of model `m` owned by `a` (or 0), and
///   `rentalExpires` is that licence's expiry (0 when `rentalId` is 0);
/// - a licence is only ever destroyed by `terminate`, called by the marketplace after a full refund;
/// - `_records[id].transfers` counts the holder changes of licence `id` since its mint and only
///   grows, so (holder, transfers) never names the same holding twice (the escrow's listings rely on
///   it);
/// - a locked licence (open dispute) neither moves nor is extended until the marketplace unlocks it.
/// Plain ERC-721 transfers (`transferFrom`, `safeTransferFrom`) move the licence and its access to the
/// receiver, pay no royalty, and revert with `RentalAlreadyHeld` if the receiver already holds a
/// rental of the same model (live or lapsed).
/// IMPORTANT: the marketplace (the RentalEscrow) is fixed at deployment and cannot change: it alone
/// mints, extends, locks and terminates licences. There is no admin: no one can grant that power to
/// another account, and no one can burn or take a licence from its holder otherwise. A new escrow
/// therefore needs a new LicenseNFT (deploy it with the escrow's address, e.g. precomputed from the
/// deployer's nonce as `daimm.market.deploy.deploy_all` does).
/// NOTE: only the read side of ERC-4907 is implemented (`setUser` is not: the holder is the user), so
/// `supportsInterface` reports this contract's own `IERC4907` id, not the standard's 0xad092b5c.
contract LicenseNFT is ERC721, ILicenseNFT, IERC4907 {
    // ---------------------------------------------------------------- types
    /// @dev A licence as stored, with its holder. One slot. A perpetual licence's expiry is
    /// `type(uint64).max` and a rental's lives in its holder's `Access` slot, so neither is kept here.
    struct Record {
        address holder;
        uint48 modelId;
        Kind kind;
        uint40 transfers;
    }

    /// @dev What one account holds of one model. One storage slot.
    struct Access {
        uint64 rentalId;
        uint64 rentalExpires;
        uint32 perpetualCount;
        bool rentalLocked;
    }

    // ---------------------------------------------------------------- storage
    /// @inheritdoc ILicenseNFT
    /// @dev Immutable (in the code, not storage): the marketplace check on every mint and extension
    /// reads no storage slot.
    address public immutable marketplace;

    uint64 private _licenceCount;
    /// @dev Holder and licence in one slot (OpenZeppelin's `_owners` and a separate record would be
    /// two: a mint then writes one new slot more and a transfer one more). OpenZeppelin's `_owners`
    /// and `_balances` stay empty: `_ownerOf`, `balanceOf` and `_update` read and write these instead.
    mapping(uint256 licenceId => Record) private _records;
    mapping(address holder => uint256) private _holdings;
    mapping(uint256 modelId => mapping(address account => Access)) private _access;
    /// @dev Locks of perpetual licences; a rental's lock lives in its `Access` slot (read on extend anyway).
    mapping(uint256 licenceId => bool) private _perpetualLocked;

    // ---------------------------------------------------------------- constructor
    /// @param marketplace_ The RentalEscrow, the only account that may mint, extend, lock and terminate.
    constructor(address marketplace_) ERC721("daimm Model Licence", "DAIMM-LIC") {
        if (marketplace_ == address(0)) revert ZeroMarketplace();
        marketplace = marketplace_;
    }

    // ---------------------------------------------------------------- external
    /// @inheritdoc ILicenseNFT
    function mintPerpetualLicence(address holder, uint256 modelId) external returns (uint256 licenceId) {
        _checkMarketplace();
        licenceId = _mintLicence(holder, modelId, Kind.Perpetual, type(uint64).max);
    }

    /// @inheritdoc ILicenseNFT
    function mintOrExtendRental(address holder, uint256 modelId, uint64 duration)
        external
        returns (uint256 licenceId, uint64 expires)
    {
        _checkMarketplace();
        Access storage access = _access[modelId][holder];
        // One read of the slot; the fields below come from this copy.
        Access memory held = access;
        licenceId = held.rentalId;
        if (licenceId == 0) {
            expires = uint64(block.timestamp) + duration;
            licenceId = _mintLicence(holder, modelId, Kind.Rental, expires);
        } else {
            if (held.rentalLocked) revert LicenceLocked(licenceId);
            uint64 current = held.rentalExpires;
            expires = (current > block.timestamp ? current : uint64(block.timestamp)) + duration;
            access.rentalExpires = expires;
            emit LicenceExtended(licenceId, modelId, expires);
            emit UpdateUser(licenceId, holder, expires);
        }
    }

    /// @inheritdoc ILicenseNFT
    function setLocked(uint256 licenceId, bool locked) external {
        _checkMarketplace();
        Record memory record = _requireRecord(licenceId);
        bool current;
        if (record.kind == Kind.Perpetual) {
            current = _perpetualLocked[licenceId];
            _perpetualLocked[licenceId] = locked;
        } else {
            Access storage access = _access[record.modelId][record.holder];
            current = access.rentalLocked;
            access.rentalLocked = locked;
        }
        if (current == locked) {
            if (locked) revert LicenceLocked(licenceId);
            revert LicenceNotLocked(licenceId);
        }
        emit LicenceLockSet(licenceId, locked);
    }

    /// @inheritdoc ILicenseNFT
    function terminate(uint256 licenceId) external {
        _checkMarketplace();
        uint256 modelId = _requireRecord(licenceId).modelId;
        // `_burn` runs `_update`, which removes the licence from its holder's access record and
        // clears the holder; the rest of the record goes here.
        _burn(licenceId);
        delete _records[licenceId];
        emit LicenceTerminated(licenceId, modelId);
    }

    // ---------------------------------------------------------------- view
    /// @inheritdoc ILicenseNFT
    function hasAccess(uint256 modelId, address account) external view returns (bool) {
        Access storage access = _access[modelId][account];
        return access.perpetualCount != 0 || access.rentalExpires > block.timestamp;
    }

    /// @inheritdoc ILicenseNFT
    function licenceOf(uint256 licenceId) external view returns (Licence memory licence) {
        Record memory record = _requireRecord(licenceId);
        licence = Licence(record.modelId, _expiresOf(record), record.kind, record.transfers);
    }

    /// @inheritdoc ILicenseNFT
    function isLocked(uint256 licenceId) external view returns (bool) {
        Record memory record = _requireRecord(licenceId);
        if (record.kind == Kind.Perpetual) return _perpetualLocked[licenceId];
        return _access[record.modelId][record.holder].rentalLocked;
    }

    /// @inheritdoc ILicenseNFT
    function transfersOf(uint256 licenceId) external view returns (uint256) {
        return _requireRecord(licenceId).transfers;
    }

    /// @inheritdoc ILicenseNFT
    function rentalOf(uint256 modelId, address account) external view returns (uint256 licenceId) {
        return _access[modelId][account].rentalId;
    }

    /// @inheritdoc ILicenseNFT
    function perpetualCountOf(uint256 modelId, address account) external view returns (uint256) {
        return _access[modelId][account].perpetualCount;
    }

    /// @inheritdoc ILicenseNFT
    function licenceCount() external view returns (uint256) {
        return _licenceCount;
    }

    /// @inheritdoc IERC4907
    function userOf(uint256 tokenId) external view returns (address) {
        Record memory record = _requireRecord(tokenId);
        return _expiresOf(record) > block.timestamp ? record.holder : address(0);
    }

    /// @inheritdoc IERC4907
    function userExpires(uint256 tokenId) external view returns (uint256) {
        return _expiresOf(_requireRecord(tokenId));
    }

    /// @inheritdoc ERC721
    function balanceOf(address owner) public view override(ERC721, IERC721) returns (uint256) {
        if (owner == address(0)) revert ERC721InvalidOwner(address(0));
        return _holdings[owner];
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, IERC165) returns (bool) {
        return interfaceId == type(ILicenseNFT).interfaceId || interfaceId == type(IERC4907).interfaceId
            || super.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- internal
    /// @inheritdoc ERC721
    function _ownerOf(uint256 tokenId) internal view override returns (address) {
        return _records[tokenId].holder;
    }

    /// @dev Never called (only ERC721Consecutive's batch mints use it); kept consistent with
    /// `balanceOf` all the same.
    function _increaseBalance(address account, uint128 value) internal override {
        unchecked {
            _holdings[account] += value;
        }
    }

    /// @dev OpenZeppelin's `_update` on this contract's own slots (holder in the licence record,
    /// balances in `_holdings`), then: moves the access of a transferred or burnt licence from its
    /// holder to the receiver and counts the transfer (`transfersOf`). Mints set access themselves
    /// (`_mintLicence`) and count nothing; a burn clears the holder and `terminate` the record.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        Record storage record = _records[tokenId];
        from = record.holder;
        if (auth != address(0)) _checkAuthorized(from, auth, tokenId);
        unchecked {
            // A holder's count is at least 1 (it holds `tokenId`); 2**256 licences cannot exist.
            if (from != address(0)) {
                // Clears the single-token approval, as OpenZeppelin does, without an event.
                _approve(address(0), tokenId, address(0), false);
                --_holdings[from];
            }
            if (to != address(0)) ++_holdings[to];
        }
        record.holder = to;
        emit Transfer(from, to, tokenId);
        if (from == address(0)) return from;

        uint256 modelId = record.modelId;
        uint64 expires;
        if (record.kind == Kind.Perpetual) {
            expires = type(uint64).max;
            if (to == address(0)) {
                delete _perpetualLocked[tokenId];
            } else if (_perpetualLocked[tokenId]) {
                revert LicenceLocked(tokenId);
            }
            unchecked {
                // `from` owned this perpetual licence, so its count is at least 1.
                --_access[modelId][from].perpetualCount;
            }
            if (to != address(0)) ++_access[modelId][to].perpetualCount;
        } else {
            Access storage fromAccess = _access[modelId][from];
            if (to != address(0) && fromAccess.rentalLocked) revert LicenceLocked(tokenId);
            expires = fromAccess.rentalExpires;
            fromAccess.rentalId = 0;
            fromAccess.rentalExpires = 0;
            fromAccess.rentalLocked = false;
            if (to != address(0)) {
                Access storage toAccess = _access[modelId][to];
                if (toAccess.rentalId != 0) revert RentalAlreadyHeld(modelId, to, toAccess.rentalId);
                toAccess.rentalId = uint64(tokenId);
                toAccess.rentalExpires = expires;
            }
        }
        if (to != address(0)) {
            unchecked {
                // Each transfer costs far more than 21,000 gas: 2**40 of them (> 2 * 10**16 gas) cannot happen.
                ++record.transfers;
            }
        }
        emit UpdateUser(tokenId, to, to == address(0) ? 0 : expires);
    }

    // ---------------------------------------------------------------- private
    function _mintLicence(address holder, uint256 modelId, Kind kind, uint64 expires)
        private
        returns (uint256 licenceId)
    {
        unchecked {
            // One id per mint; 2**64 mints cannot happen.
            licenceId = ++_licenceCount;
        }
        // NOTE: field by field, not `= Record(...)`: the slot of a new id is zero, so `transfers` starts
        // at 0 unwritten and `_mint` writes the holder; a struct copy writes every field.
        Record storage record = _records[licenceId];
        record.modelId = SafeCast.toUint48(modelId);
        record.kind = kind;
        // NOTE: `_mint`, not `_safeMint`: no receiver callback runs inside the escrow's payment flow.
        _mint(holder, licenceId);
        Access storage access = _access[modelId][holder];
        if (kind == Kind.Perpetual) {
            ++access.perpetualCount;
        } else {
            access.rentalId = uint64(licenceId);
            access.rentalExpires = expires;
        }
        emit LicenceMinted(licenceId, modelId, holder, kind, expires);
        emit UpdateUser(licenceId, holder, expires);
    }

    function _checkMarketplace() private view {
        if (msg.sender != marketplace) revert NotMarketplace(msg.sender);
    }

    /// @dev The record of `licenceId` (one slot read), or `UnknownLicence` if it has no holder.
    function _requireRecord(uint256 licenceId) private view returns (Record memory record) {
        record = _records[licenceId];
        if (record.holder == address(0)) revert UnknownLicence(licenceId);
    }

    function _expiresOf(Record memory record) private view returns (uint64) {
        return record.kind == Kind.Perpetual ? type(uint64).max : _access[record.modelId][record.holder].rentalExpires;
    }
}
