// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {ILicenseNFT} from "./interfaces/ILicenseNFT.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IRentalEscrow} from "./interfaces/IRentalEscrow.sol";
import {PayeeSets} from "./libraries/PayeeSets.sol";
import {Payments} from "./libraries/Payments.sol";

/// @title RentalEscrow
/// @notice daimm's marketplace: offers, rentals, perpetual sales, licence resales, revenue splits,
/// escrow for the dispute window, disputes and pull payments.
/// @dev Money flow: payment -> settlement bucket (payeeSet, currency, releaseAt) -> `settle` after
/// `releaseAt` -> `owed` balances -> `withdraw`. A dispute moves a payment out of its bucket into the
/// dispute until an arbiter resolves it.
/// Invariants (per currency):
/// - balance == sum(buckets.amount) + sum(open disputes.amount) + sum(owed) (+ what was sent to it
///   outside these functions);
/// - a bucket's `fee <= amount`; a bucket only pays out once, after its `releaseAt`;
/// - each licence receipt (what its payer may dispute) is part of exactly one unsettled bucket;
/// - a currency id, once given, names the same currency forever (offers and listings store ids);
/// - a listing sells only the holding that made it: once the licence changes holder (by any transfer)
///   the listing is stale forever, even if the licence comes back to its seller.
/// IMPORTANT: ERC-20 payments are booked at the balance actually received, so a fee-on-transfer token
/// costs the payees its fee, not the payer. Only allow tokens whose `transfer` cannot be blocked for
/// the escrow; a token that blocks transfers out freezes withdrawals in that token only.
/// NOTE: licence resales are held for the dispute window but are not disputable (the licence is an
/// on-chain token the buyer can inspect); rentals and perpetual sales are.
contract RentalEscrow is AccessControl, ReentrancyGuardTransient, IRentalEscrow {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    // ---------------------------------------------------------------- types
    /// @dev What a rental reads of an offer, and what a perpetual sale reads besides its price. One slot.
    struct Sale {
        uint96 pricePerPeriod;
        uint32 periodSeconds;
        uint16 minPeriods;
        uint16 maxPeriods;
        bool active;
        uint8 currencyId; // the offer's currency is `_currencies[currencyId]`; 0 until an offer is set
        bool hasSplit; // a split is set: `Terms.splitOwner` is then read, otherwise never
        uint24 splitNonce; // the latest split is `PayeeSets.splitId(modelId, splitNonce)`
    }

    /// @dev An offer as stored, with the model's split reference. A rental reads slot 0 alone (and
    /// slot 1 only when the model has a split).
    struct Terms {
        // slot 0
        Sale sale;
        // slot 1
        address splitOwner; // the owner who set the current split; the split lapses when the model moves
        // slot 2
        uint128 perpetualPrice;
        uint128 pricePerCall;
    }

    /// @dev Held payments of one (payeeSet, currency, releaseAt). One slot.
    struct Bucket {
        uint128 amount; // gross, fee included
        uint128 fee;
    }

    /// @dev What a payer may dispute for one licence: its payments in its latest bucket. One slot.
    struct Receipt {
        uint112 amount;
        uint112 fee;
        uint32 releaseHour; // releaseAt / SETTLEMENT_GRANULARITY
    }

    struct Split {
        address[] payees;
        uint16[] bps;
    }

    struct Config {
        address treasury;
        uint16 feeBps;
    }

    /// @dev A currency the admin has allowed at least once. One slot, read once per payment: the
    /// address to pull from, the allow flag and the platform fee (copied here, see `setFee`).
    struct Currency {
        address token; // address(0) is ETH
        bool allowed;
        uint16 feeBps;
    }

    /// @dev A listing as stored: the currency by id so that seller, currency and holding share a slot.
    struct StoredListing {
        // slot 0
        address seller;
        uint8 currencyId; // `_currencies[currencyId]`
        uint48 transfers; // the licence's `transfersOf` when listed: the listing is live while it is unchanged
        // slot 1
        uint128 price;
    }

    // ---------------------------------------------------------------- storage
    /// @inheritdoc IRentalEscrow
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    /// @inheritdoc IRentalEscrow
    bytes32 public constant REVENUE_SOURCE_ROLE = keccak256("REVENUE_SOURCE_ROLE");
    /// @inheritdoc IRentalEscrow
    uint16 public constant MAX_FEE_BPS = 1_000;
    /// @inheritdoc IRentalEscrow
    uint256 public constant MAX_PAYEES = 8;
    /// @inheritdoc IRentalEscrow
    uint64 public constant SETTLEMENT_GRANULARITY = 1 hours;
    /// @inheritdoc IRentalEscrow
    uint256 public constant MAX_CURRENCIES = 32;

    /// @inheritdoc IRentalEscrow
    IModelRegistry public immutable registry;
    /// @inheritdoc IRentalEscrow
    ILicenseNFT public immutable licences;
    /// @inheritdoc IRentalEscrow
    /// @dev An address, not an `IERC20`: it is only ever compared with a payment's currency.
    address public immutable utilityToken;
    /// @inheritdoc IRentalEscrow
    uint64 public immutable disputeWindow;

    Config private _config;
    uint256 private _disputeCount;
    /// @dev Every currency ever allowed gets the next id from 1; ids never change. A mapping rather
    /// than an array: reading an array element also reads its length (one more cold slot per payment).
    uint256 private _currencyCount;
    mapping(uint256 currencyId => Currency) private _currencies;
    mapping(address currency => uint256 currencyId) private _currencyIds;
    mapping(uint256 modelId => Terms) private _terms;
    mapping(uint256 payeeSet => Split) private _splits;
    mapping(bytes32 bucketKey => Bucket) private _buckets;
    mapping(bytes32 receiptKey => Receipt) private _receipts;
    mapping(uint256 licenceId => StoredListing) private _listings;
    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(address account => mapping(address currency => uint256)) private _owed;

    // ---------------------------------------------------------------- constructor
    /// @param registry_ The ModelRegistry.
    /// @param licences_ The LicenseNFT.
    /// @param utilityToken_ The AIModelToken (AIMT); it still has to be allowed as a currency.
    /// @param admin Receives DEFAULT_ADMIN_ROLE.
    /// @param treasury_ Receives the platform fee.
    /// @param feeBps_ Platform fee in basis points (at most `MAX_FEE_BPS`).
    /// @param disputeWindow_ How long payments are held, in seconds.
    constructor(
        address registry_,
        address licences_,
        address utilityToken_,
        address admin,
        address treasury_,
        uint16 feeBps_,
        uint64 disputeWindow_
    ) {
        if (
            registry_ == address(0) || licences_ == address(0) || utilityToken_ == address(0) || admin == address(0)
                || treasury_ == address(0)
        ) revert ZeroAddress();
        if (feeBps_ > MAX_FEE_BPS) revert FeeTooHigh(feeBps_, MAX_FEE_BPS);
        registry = IModelRegistry(registry_);
        licences = ILicenseNFT(licences_);
        utilityToken = utilityToken_;
        disputeWindow = disputeWindow_;
        _config = Config(treasury_, feeBps_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        emit TreasurySet(treasury_);
        emit FeeSet(feeBps_);
    }

    // ---------------------------------------------------------------- external: model owner
    /// @inheritdoc IRentalEscrow
    function setOffer(uint256 modelId, Offer calldata offer) external {
        _requireModelOwner(modelId);
        (uint256 currencyId, Currency memory currency) = _currencyOf(offer.currency);
        if (!currency.allowed) revert CurrencyNotAllowed(offer.currency);
        if (
            offer.pricePerPeriod != 0
                && (offer.periodSeconds == 0 || offer.minPeriods == 0 || offer.minPeriods > offer.maxPeriods)
        ) revert InvalidOffer(modelId);
        Terms storage terms = _terms[modelId];
        Sale storage sale = terms.sale;
        // The split fields are kept; `currencyId <= MAX_CURRENCIES` fits in uint8.
        terms.sale = Sale(
            offer.pricePerPeriod,
            offer.periodSeconds,
            offer.minPeriods,
            offer.maxPeriods,
            offer.active,
            uint8(currencyId),
            sale.hasSplit,
            sale.splitNonce
        );
        terms.perpetualPrice = offer.perpetualPrice;
        terms.pricePerCall = offer.pricePerCall;
        emit OfferSet(modelId, offer);
    }

    /// @inheritdoc IRentalEscrow
    /// @dev Empty arrays clear the split: payments go to the owner again.
    function setSplit(uint256 modelId, address[] calldata payees, uint16[] calldata bps)
        external
        returns (uint256 payeeSet)
    {
        address owner = _requireModelOwner(modelId);
        uint256 n = payees.length;
        if (n != bps.length) revert InvalidSplit();
        if (n > MAX_PAYEES) revert TooManyPayees(n, MAX_PAYEES);
        Terms storage terms = _terms[modelId];
        if (n == 0) {
            terms.sale.hasSplit = false;
            terms.splitOwner = address(0);
            payeeSet = PayeeSets.single(owner);
        } else {
            uint256 total;
            for (uint256 i; i < n; ++i) {
                if (payees[i] == address(0)) revert ZeroAddress();
                if (bps[i] == 0) revert InvalidSplit();
                total += bps[i];
            }
            if (total != Payments.BPS) revert InvalidSplit();
            uint24 nonce = terms.sale.splitNonce + 1;
            payeeSet = PayeeSets.splitId(modelId, nonce);
            _splits[payeeSet] = Split(payees, bps);
            terms.splitOwner = owner;
            (terms.sale.hasSplit, terms.sale.splitNonce) = (true, nonce);
        }
        emit SplitSet(modelId, payeeSet, payees, bps);
    }

    // ---------------------------------------------------------------- external: buyers
    /// @inheritdoc IRentalEscrow
    function rent(uint256 modelId, uint256 periods, uint256 maxPrice)
        external
        payable
        nonReentrant
        returns (uint256 licenceId)
    {
        Sale memory sale = _terms[modelId].sale; // the one slot a rental reads (see `Terms`)
        if (!sale.active) revert OfferInactive(modelId);
        if (sale.pricePerPeriod == 0) revert NotForSale(modelId);
        if (periods < sale.minPeriods || periods > sale.maxPeriods) {
            revert DurationOutOfRange(modelId, periods, sale.minPeriods, sale.maxPeriods);
        }
        uint256 price;
        unchecked {
            // periods <= maxPeriods < 2**16 and pricePerPeriod < 2**96: the product is below 2**112.
            price = periods * sale.pricePerPeriod;
        }
        if (price > maxPrice) revert PriceAboveMax(price, maxPrice);
        uint256 payeeSet = _currentPayeeSet(modelId, sale.hasSplit, sale.splitNonce);
        uint64 expires;
        unchecked {
            // periods <= maxPeriods < 2**16 and periodSeconds < 2**32: the duration is below 2**48.
            (licenceId, expires) =
                licences.mintOrExtendRental(msg.sender, modelId, uint64(periods * sale.periodSeconds));
        }
        // NOTE: the payment is pulled before it is booked because an ERC-20 is booked at the balance
        // actually received; `nonReentrant` and the licence minted first keep this safe.
        Currency memory currency = _currencyById(sale.currencyId);
        (uint256 received, uint256 fee) = _collect(currency, price);
        _hold(modelId, licenceId, msg.sender, payeeSet, currency.token, received, fee, true);
        emit Rented(modelId, licenceId, msg.sender, periods, expires, price);
    }

    /// @inheritdoc IRentalEscrow
    function buy(uint256 modelId, uint256 maxPrice) external payable nonReentrant returns (uint256 licenceId) {
        Terms storage terms = _terms[modelId];
        Sale storage sale = terms.sale;
        if (!sale.active) revert OfferInactive(modelId);
        uint256 price = terms.perpetualPrice;
        if (price == 0) revert NotForSale(modelId);
        if (price > maxPrice) revert PriceAboveMax(price, maxPrice);
        uint256 payeeSet = _currentPayeeSet(modelId, sale.hasSplit, sale.splitNonce);
        licenceId = licences.mintPerpetualLicence(msg.sender, modelId);
        Currency memory currency = _currencyById(sale.currencyId);
        (uint256 received, uint256 fee) = _collect(currency, price);
        _hold(modelId, licenceId, msg.sender, payeeSet, currency.token, received, fee, true);
        emit Bought(modelId, licenceId, msg.sender, price);
    }

    /// @inheritdoc IRentalEscrow
    function list(uint256 licenceId, address currency, uint128 price) external {
        address holder = _licenceHolder(licenceId);
        if (holder != msg.sender) revert NotLicenceHolder(licenceId, msg.sender);
        (uint256 currencyId, Currency memory config) = _currencyOf(currency);
        if (!config.allowed) revert CurrencyNotAllowed(currency);
        if (
            licences.getApproved(licenceId) != address(this)
                && !licences.isApprovedForAll(holder, address(this))
        ) revert NotApproved(licenceId);
        uint48 transfers = licences.transfersOf(licenceId).toUint48();
        // `currencyId <= MAX_CURRENCIES` fits in uint8.
        _listings[licenceId] = StoredListing(holder, uint8(currencyId), transfers, price);
        emit Listed(licenceId, holder, currency, price);
    }

    /// @inheritdoc IRentalEscrow
    /// @dev The seller of the listing or the licence's current holder may delist.
    function delist(uint256 licenceId) external {
        address seller = _listings[licenceId].seller;
        if (seller == address(0)) revert NotListed(licenceId);
        if (msg.sender != seller && msg.sender != _licenceHolder(licenceId)) {
            revert NotLicenceHolder(licenceId, msg.sender);
        }
        delete _listings[licenceId];
        emit Delisted(licenceId);
    }

    /// @inheritdoc IRentalEscrow
    /// @dev The fee is taken from the seller's part; the royalty receiver's part carries no fee.
    function buyListed(uint256 licenceId, uint256 maxPrice) external payable nonReentrant {
        StoredListing memory listing = _listings[licenceId];
        (bool live, uint256 modelId) = _liveListing(licenceId, listing);
        if (!live) revert NotListed(licenceId);
        if (listing.price > maxPrice) revert PriceAboveMax(listing.price, maxPrice);
        delete _listings[licenceId];
        Currency memory currency = _currencyById(listing.currencyId);
        (uint256 received, uint256 fee) = _collect(currency, listing.price);
        (address receiver, uint256 royalty) = registry.royaltyInfo(modelId, received);
        _hold(modelId, licenceId, msg.sender, PayeeSets.single(listing.seller), currency.token, received - royalty, fee, false);
        if (royalty != 0) {
            _hold(modelId, licenceId, msg.sender, PayeeSets.single(receiver), currency.token, royalty, 0, false);
        }
        // NOTE: `transferFrom`, not `safeTransferFrom`: no receiver callback runs in a paid flow.
        licences.transferFrom(listing.seller, msg.sender, licenceId);
        emit Delisted(licenceId);
        emit Resold(licenceId, modelId, msg.sender, listing.seller, received, royalty);
    }

    // ---------------------------------------------------------------- external: disputes
    /// @inheritdoc IRentalEscrow
    function openDispute(uint256 licenceId) external returns (uint256 disputeId) {
        if (_licenceHolder(licenceId) != msg.sender) revert NotLicenceHolder(licenceId, msg.sender);
        uint256 modelId = licences.licenceOf(licenceId).modelId;
        Sale storage sale = _terms[modelId].sale;
        uint256 payeeSet = _currentPayeeSet(modelId, sale.hasSplit, sale.splitNonce);
        return _openDispute(licenceId, payeeSet, _currencyById(sale.currencyId).token);
    }

    /// @inheritdoc IRentalEscrow
    function openDispute(uint256 licenceId, uint256 payeeSet, address currency) external returns (uint256 disputeId) {
        if (_licenceHolder(licenceId) != msg.sender) revert NotLicenceHolder(licenceId, msg.sender);
        return _openDispute(licenceId, payeeSet, currency);
    }

    /// @inheritdoc IRentalEscrow
    function resolveDispute(uint256 disputeId, Resolution resolution, uint16 refundBps)
        external
        onlyRole(ARBITER_ROLE)
    {
        Dispute storage dispute = _disputes[disputeId];
        if (!dispute.open) revert DisputeNotOpen(disputeId);
        uint256 amount = dispute.amount;
        uint256 fee = dispute.fee;
        uint256 refund;
        uint256 refundFee;
        if (resolution == Resolution.Refund) {
            (refund, refundFee) = (amount, fee);
        } else if (resolution == Resolution.Split) {
            if (refundBps == 0 || refundBps >= Payments.BPS) revert InvalidRefund(refundBps);
            (refund, refundFee) = Payments.splitRefund(amount, fee, refundBps);
        }
        dispute.open = false;
        address currency = dispute.currency;
        uint256 licenceId = dispute.licenceId;
        // A release refunds nothing: the payer's slot is not read.
        if (refund != 0) _credit(dispute.payer, currency, refund);
        _release(dispute.payeeSet, currency, amount - refund, fee - refundFee);
        emit DisputeResolved(disputeId, resolution, refund, amount - refund);
        if (resolution == Resolution.Refund) {
            licences.terminate(licenceId);
        } else {
            licences.setLocked(licenceId, false);
        }
    }

    // ---------------------------------------------------------------- external: settlement and withdrawal
    /// @inheritdoc IRentalEscrow
    function settle(uint256 payeeSet, address currency, uint64 releaseAt) external {
        if (releaseAt > block.timestamp) revert NotMatured(releaseAt, block.timestamp);
        bytes32 key = _bucketKey(payeeSet, currency, releaseAt);
        Bucket memory bucket = _buckets[key];
        if (bucket.amount == 0) revert NothingHeld(payeeSet, currency, releaseAt);
        delete _buckets[key];
        emit Settled(payeeSet, currency, releaseAt, bucket.amount, bucket.fee);
        _release(payeeSet, currency, bucket.amount, bucket.fee);
    }

    /// @inheritdoc IRentalEscrow
    function withdraw(address currency) external nonReentrant returns (uint256 amount) {
        amount = _owed[msg.sender][currency];
        if (amount == 0) revert NothingOwed(msg.sender, currency);
        delete _owed[msg.sender][currency];
        emit Withdrawn(msg.sender, currency, amount);
        _pay(msg.sender, currency, amount);
    }

    /// @inheritdoc IRentalEscrow
    /// @dev A currency the admin delisted after the payer's deposit is still booked: the revenue
    /// source checked it was allowed when the payer deposited, and delisting never blocks what is owed
    /// for calls already served. A currency that was never allowed is refused.
    function depositRevenue(uint256 modelId, address payer, address currency, uint256 amount)
        external
        payable
        onlyRole(REVENUE_SOURCE_ROLE)
    {
        (uint256 currencyId, Currency memory config) = _currencyOf(currency);
        if (currencyId == 0) revert CurrencyNotAllowed(currency);
        uint256 expected = currency == address(0) ? amount : 0;
        if (msg.value != expected) revert WrongPayment(expected, msg.value);
        _requireModel(modelId);
        uint256 fee = Payments.fee(amount, config.feeBps);
        Sale storage sale = _terms[modelId].sale;
        _hold(modelId, 0, payer, _currentPayeeSet(modelId, sale.hasSplit, sale.splitNonce), currency, amount, fee, false);
        emit RevenueDeposited(modelId, msg.sender, currency, amount, fee);
    }

    // ---------------------------------------------------------------- external: admin
    /// @inheritdoc IRentalEscrow
    /// @dev Reverts `TooManyCurrencies` when allowing a `MAX_CURRENCIES + 1`-th distinct currency.
    function setCurrencyAllowed(address currency, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint256 currencyId = _currencyIds[currency];
        if (currencyId == 0) {
            currencyId = _currencyCount + 1;
            if (currencyId > MAX_CURRENCIES) revert TooManyCurrencies(MAX_CURRENCIES);
            _currencyCount = currencyId;
            _currencyIds[currency] = currencyId;
            _currencies[currencyId] = Currency(currency, allowed, _config.feeBps);
        } else {
            _currencies[currencyId].allowed = allowed;
        }
        emit CurrencyAllowed(currency, allowed);
    }

    /// @inheritdoc IRentalEscrow
    function setFee(uint16 feeBps_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (feeBps_ > MAX_FEE_BPS) revert FeeTooHigh(feeBps_, MAX_FEE_BPS);
        _config.feeBps = feeBps_;
        // NOTE: the fee is copied into each currency's slot so that a payment reads one slot for both
        // the allow-list and the fee; this loop is bounded by MAX_CURRENCIES and runs over admin data.
        uint256 n = _currencyCount;
        for (uint256 id = 1; id <= n; ++id) {
            _currencies[id].feeBps = feeBps_;
        }
        emit FeeSet(feeBps_);
    }

    /// @inheritdoc IRentalEscrow
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury_ == address(0)) revert ZeroAddress();
        _config.treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    // ---------------------------------------------------------------- view
    /// @inheritdoc IRentalEscrow
    function offerOf(uint256 modelId) external view returns (Offer memory) {
        Terms storage t = _terms[modelId];
        Sale memory s = t.sale;
        return Offer(
            _currencyById(s.currencyId).token,
            s.pricePerPeriod,
            s.periodSeconds,
            s.minPeriods,
            s.maxPeriods,
            s.active,
            t.perpetualPrice,
            t.pricePerCall
        );
    }

    /// @inheritdoc IRentalEscrow
    function payPerUseOf(uint256 modelId)
        external
        view
        returns (uint8 currencyId, address currency, bool active, bool allowed, uint128 pricePerCall)
    {
        Terms storage t = _terms[modelId];
        Sale memory s = t.sale;
        Currency memory config = _currencyById(s.currencyId);
        return (s.currencyId, config.token, s.active, config.allowed, t.pricePerCall);
    }

    /// @inheritdoc IRentalEscrow
    function currencyAt(uint8 currencyId) external view returns (address) {
        return _currencyById(currencyId).token;
    }

    /// @inheritdoc IRentalEscrow
    function listingOf(uint256 licenceId) external view returns (Listing memory) {
        StoredListing memory listing = _listings[licenceId];
        (bool live,) = _liveListing(licenceId, listing);
        if (!live) return Listing(address(0), address(0), 0);
        return Listing(listing.seller, _currencyById(listing.currencyId).token, listing.price);
    }

    /// @inheritdoc IRentalEscrow
    function disputeOf(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    /// @inheritdoc IRentalEscrow
    function payeesOf(uint256 payeeSet) external view returns (address[] memory payees, uint16[] memory bps) {
        if (!PayeeSets.isSplit(payeeSet)) {
            payees = new address[](1);
            bps = new uint16[](1);
            payees[0] = PayeeSets.account(payeeSet);
            bps[0] = uint16(Payments.BPS);
        } else {
            Split storage split = _splits[payeeSet];
            (payees, bps) = (split.payees, split.bps);
        }
    }

    /// @inheritdoc IRentalEscrow
    function owed(address account, address currency) external view returns (uint256) {
        return _owed[account][currency];
    }

    /// @inheritdoc IRentalEscrow
    function held(uint256 payeeSet, address currency, uint64 releaseAt) external view returns (uint128, uint128) {
        Bucket memory bucket = _buckets[_bucketKey(payeeSet, currency, releaseAt)];
        return (bucket.amount, bucket.fee);
    }

    /// @inheritdoc IRentalEscrow
    function isCurrencyAllowed(address currency) external view returns (bool) {
        (, Currency memory config) = _currencyOf(currency);
        return config.allowed;
    }

    /// @inheritdoc IRentalEscrow
    function currencies() external view returns (address[] memory list_) {
        uint256 n = _currencyCount;
        list_ = new address[](n);
        // At most MAX_CURRENCIES iterations.
        for (uint256 i; i < n; ++i) {
            list_[i] = _currencies[i + 1].token;
        }
    }

    /// @inheritdoc IRentalEscrow
    function feeBps() external view returns (uint16) {
        return _config.feeBps;
    }

    /// @inheritdoc IRentalEscrow
    function treasury() external view returns (address) {
        return _config.treasury;
    }

    /// @inheritdoc IRentalEscrow
    function payeeSetOf(uint256 modelId) external view returns (uint256) {
        _requireModel(modelId);
        Sale storage sale = _terms[modelId].sale;
        return _currentPayeeSet(modelId, sale.hasSplit, sale.splitNonce);
    }

    /// @inheritdoc IRentalEscrow
    function receiptOf(uint256 licenceId, address payer, uint256 payeeSet, address currency)
        external
        view
        returns (uint256 amount, uint256 fee, uint64 releaseAt)
    {
        Receipt memory receipt = _receipts[_receiptKey(licenceId, payer, payeeSet, currency)];
        return (receipt.amount, receipt.fee, uint64(receipt.releaseHour) * SETTLEMENT_GRANULARITY);
    }

    /// @inheritdoc IRentalEscrow
    function currentReleaseAt() external view returns (uint64) {
        return Payments.releaseAt(block.timestamp, disputeWindow, SETTLEMENT_GRANULARITY);
    }

    /// @inheritdoc IRentalEscrow
    function disputeCount() external view returns (uint256) {
        return _disputeCount;
    }

    // ---------------------------------------------------------------- private
    /// @dev The caller's dispute over its receipt for `licenceId`; the caller checked that it holds the licence.
    function _openDispute(uint256 licenceId, uint256 payeeSet, address currency) private returns (uint256 disputeId) {
        bytes32 receiptKey = _receiptKey(licenceId, msg.sender, payeeSet, currency);
        Receipt memory receipt = _receipts[receiptKey];
        if (receipt.amount == 0) revert NothingToDispute(licenceId);
        uint64 releaseAt = uint64(receipt.releaseHour) * SETTLEMENT_GRANULARITY;
        if (block.timestamp >= releaseAt) revert DisputeWindowClosed(licenceId);
        delete _receipts[receiptKey];
        Bucket storage bucket = _buckets[_bucketKey(payeeSet, currency, releaseAt)];
        // The receipt is part of this unsettled bucket (it cannot settle before `releaseAt`).
        bucket.amount -= receipt.amount;
        bucket.fee -= receipt.fee;
        unchecked {
            // One id per dispute; cannot overflow.
            disputeId = ++_disputeCount;
        }
        _disputes[disputeId] = Dispute(licenceId, msg.sender, currency, payeeSet, receipt.amount, receipt.fee, true);
        emit PaymentDisputed(disputeId, payeeSet, currency, releaseAt, receipt.amount, receipt.fee);
        emit DisputeOpened(disputeId, licenceId, msg.sender, receipt.amount);
        // Locks the licence until resolution; reverts `LicenceLocked` if a dispute is already open.
        licences.setLocked(licenceId, true);
    }

    /// @dev Book `amount` (of which `fee` is the platform's) for `payeeSet`, held until the current
    /// release time; with `disputable`, also on the payer's receipt for the licence.
    function _hold(
        uint256 modelId,
        uint256 licenceId,
        address payer,
        uint256 payeeSet,
        address currency,
        uint256 amount,
        uint256 fee,
        bool disputable
    ) private {
        uint64 releaseAt = Payments.releaseAt(block.timestamp, disputeWindow, SETTLEMENT_GRANULARITY);
        bytes32 bucketKey = _bucketKey(payeeSet, currency, releaseAt);
        // Read once, written whole: one SLOAD and one SSTORE per slot.
        Bucket memory bucket = _buckets[bucketKey];
        _buckets[bucketKey] = Bucket((bucket.amount + amount).toUint128(), (bucket.fee + fee).toUint128());
        if (disputable) {
            bytes32 receiptKey = _receiptKey(licenceId, payer, payeeSet, currency);
            Receipt memory receipt = _receipts[receiptKey];
            uint32 releaseHour = uint32(releaseAt / SETTLEMENT_GRANULARITY);
            if (receipt.releaseHour == releaseHour) {
                receipt = Receipt((receipt.amount + amount).toUint112(), (receipt.fee + fee).toUint112(), releaseHour);
            } else {
                // A payment in a later bucket replaces the receipt: only the latest bucket is disputable.
                receipt = Receipt(amount.toUint112(), fee.toUint112(), releaseHour);
            }
            _receipts[receiptKey] = receipt;
        }
        emit PaymentHeld(modelId, licenceId, payer, currency, amount, fee, payeeSet, releaseAt);
    }

    /// @dev Credit `fee` to the treasury and `amount - fee` to the payees of `payeeSet`.
    function _release(uint256 payeeSet, address currency, uint256 amount, uint256 fee) private {
        _credit(_config.treasury, currency, fee);
        uint256 net = amount - fee;
        if (!PayeeSets.isSplit(payeeSet)) {
            _credit(PayeeSets.account(payeeSet), currency, net);
            return;
        }
        Split storage split = _splits[payeeSet];
        address[] memory payees = split.payees;
        uint256[] memory amounts = Payments.shares(net, split.bps);
        // At most MAX_PAYEES iterations.
        for (uint256 i; i < payees.length; ++i) {
            _credit(payees[i], currency, amounts[i]);
        }
    }

    function _credit(address account, address currency, uint256 amount) private {
        if (amount == 0) return;
        _owed[account][currency] += amount;
        emit Credited(account, currency, amount);
    }

    /// @dev Take `price` in `config` from the caller. Returns what arrived (other ERC-20s than the utility
    /// token are measured by balance, so fee-on-transfer tokens are booked at what they deliver) and its fee.
    function _collect(Currency memory config, uint256 price) private returns (uint256 received, uint256 fee) {
        address currency = config.token;
        if (!config.allowed) revert CurrencyNotAllowed(currency);
        if (currency == address(0)) {
            if (msg.value != price) revert WrongPayment(price, msg.value);
            received = price;
        } else {
            if (msg.value != 0) revert WrongPayment(0, msg.value);
            IERC20 token = IERC20(currency);
            if (currency == utilityToken) {
                token.safeTransferFrom(msg.sender, address(this), price);
                received = price;
            } else {
                uint256 before = token.balanceOf(address(this));
                token.safeTransferFrom(msg.sender, address(this), price);
                received = token.balanceOf(address(this)) - before;
            }
        }
        fee = Payments.fee(received, config.feeBps);
    }

    function _pay(address to, address currency, uint256 amount) private {
        if (currency == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert EthTransferFailed(to, amount);
        } else {
            IERC20(currency).safeTransfer(to, amount);
        }
    }

    /// @dev The payee set of a payment for `modelId` now: split `splitNonce` while the owner who set it
    /// still owns the model, else the owner. Reads `Terms.splitOwner` only when `hasSplit`.
    function _currentPayeeSet(uint256 modelId, bool hasSplit, uint24 splitNonce) private view returns (uint256) {
        address owner = registry.ownerOf(modelId);
        // A split lapses when the model changes hands: it only counts while its setter owns the model.
        if (hasSplit && _terms[modelId].splitOwner == owner) return PayeeSets.splitId(modelId, splitNonce);
        return PayeeSets.single(owner);
    }

    /// @dev The id (0 if never allowed) and record of `currency`; a never-allowed currency is returned
    /// as not allowed.
    function _currencyOf(address currency) private view returns (uint256 currencyId, Currency memory config) {
        currencyId = _currencyIds[currency];
        config = currencyId == 0 ? Currency(currency, false, 0) : _currencies[currencyId];
    }

    /// @dev The record of currency `currencyId`; id 0 (no offer set) is ETH, not allowed.
    function _currencyById(uint256 currencyId) private view returns (Currency memory) {
        if (currencyId == 0) return Currency(address(0), false, 0);
        return _currencies[currencyId];
    }

    function _requireModelOwner(uint256 modelId) private view returns (address owner) {
        owner = _requireModel(modelId);
        if (owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
    }

    function _requireModel(uint256 modelId) private view returns (address owner) {
        try registry.ownerOf(modelId) returns (address o) {
            owner = o;
        } catch {
            revert UnknownModel(modelId);
        }
    }

    /// @dev Whether `listing` (of `licenceId`) can be bought: it exists and the licence has not changed
    /// holder since it was listed; and the licence's model (0 when not live). One call to the LicenseNFT.
    /// NOTE: no `ownerOf` check: an unchanged transfer counter means no transfer since `list`, which
    /// required the seller to hold the licence, so the seller still holds it; a terminated licence
    /// (its record deleted) makes `licenceOf` revert, read here as not live.
    function _liveListing(uint256 licenceId, StoredListing memory listing)
        private
        view
        returns (bool live, uint256 modelId)
    {
        if (listing.seller == address(0)) return (false, 0);
        try licences.licenceOf(licenceId) returns (ILicenseNFT.Licence memory licence) {
            if (licence.transfers == listing.transfers) return (true, licence.modelId);
        } catch {
            // The licence was terminated (or never minted): nothing to sell.
        }
        return (false, 0);
    }

    /// @dev The holder of `licenceId`, or zero if it does not exist (never minted or terminated).
    function _licenceHolder(uint256 licenceId) private view returns (address holder) {
        try licences.ownerOf(licenceId) returns (address h) {
            holder = h;
        } catch {
            holder = address(0);
        }
    }

    function _bucketKey(uint256 payeeSet, address currency, uint64 releaseAt) private pure returns (bytes32) {
        return keccak256(abi.encode(payeeSet, currency, releaseAt));
    }

    function _receiptKey(uint256 licenceId, address payer, uint256 payeeSet, address currency)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(licenceId, payer, payeeSet, currency));
    }
}
