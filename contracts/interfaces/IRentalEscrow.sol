// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ILicenseNFT} from "./ILicenseNFT.sol";
import {IModelRegistry} from "./IModelRegistry.sol";

/// @title IRentalEscrow
/// @notice The marketplace. Model owners set offers; users rent (time-bound licence) or buy
/// (perpetual licence) paying in ETH, the utility token or another allowed ERC-20; licence holders
/// resell licences here (the model owner's ERC-2981 royalty is paid by this contract). Every payment
/// is split at payment time into the platform fee (to the treasury), and shares for the model's
/// payees, and held for the dispute window; afterwards anyone settles it and payees pull.
/// IMPORTANT: amounts are in the currency's smallest unit (wei for ETH); shares and fees in basis
/// points (10,000 = 100%); times and durations in seconds. `address(0)` as a currency means ETH.
/// NOTE: invariant: for every currency, this contract's balance equals the sum of everything it owes
/// (held payments, disputed amounts, settled balances, revenue deposited by revenue sources).
interface IRentalEscrow {
    /// @notice A model's terms of sale.
    /// @param currency Payment currency: `address(0)` for ETH, else an allowed ERC-20.
    /// @param pricePerPeriod Price of one rental period, in the currency's smallest unit (0 = no rentals).
    /// @param periodSeconds Length of one rental period, in seconds.
    /// @param minPeriods Fewest periods one rental may buy.
    /// @param maxPeriods Most periods one rental may buy.
    /// @param perpetualPrice Price of a perpetual licence (0 = not for sale).
    /// @param pricePerCall Price of one relayer call for pay-per-use credit (0 = no pay-per-use).
    /// @param active Whether the offer takes new rentals, purchases and credit.
    struct Offer {
        address currency;
        uint96 pricePerPeriod;
        uint32 periodSeconds;
        uint16 minPeriods;
        uint16 maxPeriods;
        bool active;
        uint128 perpetualPrice;
        uint128 pricePerCall;
    }

    /// @notice A licence put up for resale by its holder.
    /// @param seller The holder who listed it.
    /// @param currency The currency of the price, `address(0)` for ETH.
    /// @param price Asked price, in the currency's smallest unit, royalty and fee included.
    struct Listing {
        address seller;
        address currency;
        uint128 price;
    }

    /// @notice How an arbiter settles a dispute.
    enum Resolution {
        Refund, // everything back to the payer; the licence is terminated
        Release, // everything to the payees and treasury
        Split // `refundBps` of the payment back to the payer, the rest released
    }

    /// @notice A dispute over a licence's held payment.
    /// @param licenceId The licence whose payment is disputed (locked while the dispute is open).
    /// @param payer Who paid and opened the dispute; refunds are credited to it.
    /// @param currency The payment's currency, `address(0)` for ETH.
    /// @param payeeSet Who the payment was held for; what is released goes to them.
    /// @param amount The disputed amount, in the currency's smallest unit, `fee` included.
    /// @param fee The platform fee part of `amount`.
    /// @param open Whether the arbiter has yet to resolve it.
    struct Dispute {
        uint256 licenceId;
        address payer;
        address currency;
        uint256 payeeSet;
        uint128 amount;
        uint128 fee;
        bool open;
    }

    // ---------------------------------------------------------------- errors
    /// @notice `caller` does not own model `modelId` (offers and splits are its owner's).
    error NotModelOwner(uint256 modelId, address caller);
    /// @notice The offer of `modelId` is not active (or was never set): no rental, purchase or credit.
    error OfferInactive(uint256 modelId);
    /// @notice The offer for `modelId` has a rental price but a zero period, zero `minPeriods`, or
    /// `minPeriods` above `maxPeriods`.
    error InvalidOffer(uint256 modelId);
    /// @notice `currency` is not allowed by the admin (now), so it cannot price an offer, a listing or
    /// a payment.
    error CurrencyNotAllowed(address currency);
    /// @notice `periods` is outside the offer's range `minPeriods..maxPeriods` for `modelId`.
    error DurationOutOfRange(uint256 modelId, uint256 periods, uint256 minPeriods, uint256 maxPeriods);
    /// @notice `modelId`'s offer has no price for what was asked (zero rental or perpetual price).
    error NotForSale(uint256 modelId);
    /// @notice The price now, `price`, is above the caller's `maxPrice` (the offer or listing changed).
    error PriceAboveMax(uint256 price, uint256 maxPrice);
    /// @notice `received` wei were sent where `expected` were due (the exact ETH price, or 0 for an ERC-20).
    error WrongPayment(uint256 expected, uint256 received);
    /// @notice A platform fee of `bps` basis points is above the cap `maxBps`.
    error FeeTooHigh(uint16 bps, uint16 maxBps);
    /// @notice A split's payees and shares differ in length, or a share is 0, or the shares do not sum
    /// to 10,000 basis points.
    error InvalidSplit();
    /// @notice A split of `count` payees is more than `max` (`MAX_PAYEES`).
    error TooManyPayees(uint256 count, uint256 max);
    /// @notice `caller` does not hold licence `licenceId` (or it does not exist), or may not delist it.
    error NotLicenceHolder(uint256 licenceId, address caller);
    /// @notice Licence `licenceId` has no live listing (none, or stale since the licence moved).
    error NotListed(uint256 licenceId);
    /// @notice The payment for `licenceId` has reached its `releaseAt`: the dispute window is over.
    error DisputeWindowClosed(uint256 licenceId);
    /// @notice The caller has no disputable held payment for `licenceId` (with that payee set and
    /// currency).
    error NothingToDispute(uint256 licenceId);
    /// @notice Dispute `disputeId` is not open (never opened, or already resolved).
    error DisputeNotOpen(uint256 disputeId);
    /// @notice A `Split` resolution needs `refundBps` strictly between 0 and 10,000.
    error InvalidRefund(uint16 refundBps);
    /// @notice The bucket is released at `releaseAt` (seconds), after `nowSeconds`: it cannot settle yet.
    error NotMatured(uint256 releaseAt, uint256 nowSeconds);
    /// @notice Nothing is owed to `account` in `currency`.
    error NothingOwed(address account, address currency);
    /// @notice Sending `amount` wei to `to` failed (it reverted or refused ETH).
    error EthTransferFailed(address to, uint256 amount);
    /// @notice An address argument (a constructor argument, treasury or split payee) was zero.
    error ZeroAddress();
    /// @notice Model `modelId` does not exist in the registry.
    error UnknownModel(uint256 modelId);
    /// @notice The escrow is not approved to move licence `licenceId` (approve it before listing).
    error NotApproved(uint256 licenceId);
    /// @notice The admin already allowed `max` distinct currencies (`MAX_CURRENCIES`).
    error TooManyCurrencies(uint256 max);
    /// @notice Nothing is held for `payeeSet` in `currency` released at `releaseAt` (never, or settled).
    error NothingHeld(uint256 payeeSet, address currency, uint64 releaseAt);

    // ---------------------------------------------------------------- events
    /// @notice The owner of `modelId` set its offer to `offer`.
    event OfferSet(uint256 indexed modelId, Offer offer);
    /// @notice The owner of `modelId` set a split: payments from now on carry `payeeSet`, shared by
    /// `payees` in `bps` basis points (empty arrays: back to the owner alone, `payeeSet` its address).
    event SplitSet(uint256 indexed modelId, uint256 indexed payeeSet, address[] payees, uint16[] bps);
    /// @notice The admin allowed (`allowed`) or disallowed `currency` for new offers, listings and payments.
    event CurrencyAllowed(address indexed currency, bool allowed);
    /// @notice The platform fee of payments from now on is `feeBps` basis points.
    event FeeSet(uint16 feeBps);
    /// @notice Fees settled from now on go to `treasury`.
    event TreasurySet(address indexed treasury);
    /// @notice A payment entered escrow. `payeeSet` identifies who shares `amount - fee` (see `payeesOf`);
    /// it is released at `releaseAt` (seconds).
    /// @param licenceId The licence paid for (0 for revenue from `depositRevenue`).
    /// @param payer Who paid (the renter, buyer, or the pay-per-use payer).
    /// @param currency The currency, `address(0)` for ETH.
    /// @param amount What was booked, in the currency's smallest unit (for an ERC-20, what arrived).
    /// @param fee The platform's part of `amount`.
    event PaymentHeld(
        uint256 indexed modelId,
        uint256 indexed licenceId,
        address indexed payer,
        address currency,
        uint256 amount,
        uint256 fee,
        uint256 payeeSet,
        uint64 releaseAt
    );
    /// @notice `renter` rented `modelId` for `periods` periods: rental `licenceId` (new, or extended)
    /// now ends at `expires` (seconds); `price` is `periods * pricePerPeriod` in the offer's currency.
    event Rented(uint256 indexed modelId, uint256 indexed licenceId, address indexed renter, uint256 periods, uint64 expires, uint256 price);
    /// @notice `buyer` bought perpetual licence `licenceId` of `modelId` for `price` (the offer's currency).
    event Bought(uint256 indexed modelId, uint256 indexed licenceId, address indexed buyer, uint256 price);
    /// @notice `seller` put licence `licenceId` up for resale at `price` in `currency`.
    event Listed(uint256 indexed licenceId, address indexed seller, address currency, uint256 price);
    /// @notice The listing of licence `licenceId` ended (withdrawn, or sold).
    event Delisted(uint256 indexed licenceId);
    /// @notice `buyer` bought licence `licenceId` of `modelId` from `seller`.
    /// @param price What was booked (for an ERC-20, what arrived), royalty included.
    /// @param royalty The model owner's ERC-2981 part of `price`.
    event Resold(uint256 indexed licenceId, uint256 indexed modelId, address indexed buyer, address seller, uint256 price, uint256 royalty);
    /// @notice `payer` opened dispute `disputeId` over `amount` of its held payment for `licenceId`.
    event DisputeOpened(uint256 indexed disputeId, uint256 indexed licenceId, address indexed payer, uint256 amount);
    /// @notice Dispute `disputeId` took `amount` (of which `fee` is the platform fee) out of the held
    /// payments of `payeeSet` in `currency` released at `releaseAt`.
    event PaymentDisputed(
        uint256 indexed disputeId, uint256 indexed payeeSet, address indexed currency, uint64 releaseAt, uint256 amount, uint256 fee
    );
    /// @notice The arbiter resolved dispute `disputeId`: `refunded` was credited back to the payer and
    /// `released` to the payees and treasury.
    event DisputeResolved(uint256 indexed disputeId, Resolution resolution, uint256 refunded, uint256 released);
    /// @notice The bucket of `payeeSet` in `currency` released at `releaseAt` was settled: `amount - fee`
    /// credited to the payees and `fee` to the treasury.
    event Settled(uint256 indexed payeeSet, address indexed currency, uint64 indexed releaseAt, uint256 amount, uint256 fee);
    /// @notice `amount` of `currency` was added to what `account` may withdraw (`owed`).
    event Credited(address indexed account, address indexed currency, uint256 amount);
    /// @notice `account` withdrew `amount` of `currency`, everything it was owed in it.
    event Withdrawn(address indexed account, address indexed currency, uint256 amount);
    /// @notice Revenue source `source` booked `amount` of `currency` (of which `fee` is the platform's)
    /// for `modelId`.
    event RevenueDeposited(uint256 indexed modelId, address indexed source, address currency, uint256 amount, uint256 fee);

    // ---------------------------------------------------------------- model owner
    /// @notice Set the offer of `modelId`; only its owner.
    function setOffer(uint256 modelId, Offer calldata offer) external;

    /// @notice Split future revenue of `modelId` among up to `MAX_PAYEES` payees, in basis points
    /// summing to 10,000; only its owner. Cleared when the model changes hands.
    /// @return payeeSet The id that payments made from now on carry.
    function setSplit(uint256 modelId, address[] calldata payees, uint16[] calldata bps) external returns (uint256 payeeSet);

    // ---------------------------------------------------------------- buyers
    /// @notice Rent `modelId` for `periods` periods, or extend the caller's live or lapsed rental.
    /// Pays `periods * pricePerPeriod` in the offer's currency (send exactly that in ETH offers).
    /// @param maxPrice Most the caller accepts to pay; reverts `PriceAboveMax` if the offer changed.
    /// @return licenceId The (possibly existing) rental licence.
    function rent(uint256 modelId, uint256 periods, uint256 maxPrice) external payable returns (uint256 licenceId);

    /// @notice Buy a perpetual licence for `modelId` at no more than `maxPrice`.
    function buy(uint256 modelId, uint256 maxPrice) external payable returns (uint256 licenceId);

    /// @notice Put licence `licenceId` up for resale at `price` in `currency`; the escrow must be approved
    /// for the licence (`approve` or `setApprovalForAll` on the LicenseNFT).
    function list(uint256 licenceId, address currency, uint128 price) external;

    /// @notice Withdraw a listing.
    function delist(uint256 licenceId) external;

    /// @notice Buy a listed licence; the model owner's ERC-2981 royalty and the platform fee are
    /// taken from the price and held like any payment. Reverts with `NotListed` if the listing is
    /// stale: a listing sells only the holding that made it, so any transfer of the licence since
    /// `list` (`ILicenseNFT.transfersOf` changed) ends it, even if the licence came back.
    function buyListed(uint256 licenceId, uint256 maxPrice) external payable;

    // ---------------------------------------------------------------- disputes
    /// @notice Open a dispute over the latest held payment for `licenceId`, during its window;
    /// only the payer, who must still hold the licence.
    function openDispute(uint256 licenceId) external returns (uint256 disputeId);

    /// @notice Open a dispute over the caller's latest held payment for `licenceId` made to `payeeSet` in
    /// `currency` (as in its `PaymentHeld` event): for when the model's payees or currency changed
    /// since the payment, so the one-argument form no longer finds it.
    function openDispute(uint256 licenceId, uint256 payeeSet, address currency) external returns (uint256 disputeId);

    /// @notice Resolve dispute `disputeId`; ARBITER_ROLE only. `refundBps` is used with `Split`.
    function resolveDispute(uint256 disputeId, Resolution resolution, uint16 refundBps) external;

    // ---------------------------------------------------------------- settlement and withdrawal
    /// @notice Credit payees and treasury with the held payments of `payeeSet` in `currency` released at
    /// `releaseAt`; anyone may call once `releaseAt` has passed.
    function settle(uint256 payeeSet, address currency, uint64 releaseAt) external;

    /// @notice Pay the caller everything credited to them in `currency` (pull payment).
    function withdraw(address currency) external returns (uint256 amount);

    /// @notice Book revenue from a revenue source (the pay-per-use credit escrow), which has already
    /// transferred `amount` of `currency` to this contract; REVENUE_SOURCE_ROLE only. Fee and split
    /// apply as for any payment; it is held for the dispute window.
    function depositRevenue(uint256 modelId, address payer, address currency, uint256 amount) external payable;

    // ---------------------------------------------------------------- admin (DEFAULT_ADMIN_ROLE)
    /// @notice Allow or disallow `currency` (`address(0)` is ETH) for new offers, listings and
    /// payments. The first allowance gives it the next currency id for good; reverts
    /// `TooManyCurrencies` beyond `MAX_CURRENCIES` distinct currencies. Disallowing never blocks
    /// what is already held or owed.
    function setCurrencyAllowed(address currency, bool allowed) external;
    /// @notice Set the platform fee of payments made from now on, in basis points (at most
    /// `MAX_FEE_BPS`), for every currency; payments already held keep their fee.
    function setFee(uint16 feeBps) external;
    /// @notice Send the fees settled from now on to `treasury` (not the zero address).
    function setTreasury(address treasury) external;

    // ---------------------------------------------------------------- roles and constants
    /// @notice The role that resolves disputes (`resolveDispute`).
    function ARBITER_ROLE() external view returns (bytes32);
    /// @notice The role that books revenue (`depositRevenue`): the CreditEscrow.
    function REVENUE_SOURCE_ROLE() external view returns (bytes32);
    /// @notice The platform fee cap, in basis points (1,000 = 10%).
    function MAX_FEE_BPS() external view returns (uint16);
    /// @notice Most payees of one split.
    function MAX_PAYEES() external view returns (uint256);
    /// @notice Payments are released at multiples of this, in seconds, so payments share buckets.
    function SETTLEMENT_GRANULARITY() external view returns (uint64);
    /// @notice Most currencies the admin may ever allow (bounds the loop in `setFee`).
    function MAX_CURRENCIES() external view returns (uint256);

    // ---------------------------------------------------------------- views
    /// @notice The ModelRegistry (ERC-721 + ERC-2981) whose token owners sell and are paid.
    function registry() external view returns (IModelRegistry);
    /// @notice The LicenseNFT this escrow mints (deployed with this escrow as its immutable marketplace).
    function licences() external view returns (ILicenseNFT);
    /// @notice The utility token (AIMT): a plain ERC-20 without transfer fee, booked at the price
    /// without measuring the balance received (gas); every other ERC-20 is measured.
    function utilityToken() external view returns (address);
    /// @notice How long payments are held before they can settle, in seconds.
    function disputeWindow() external view returns (uint64);
    /// @notice The offer of `modelId` (all zero if none was ever set).
    function offerOf(uint256 modelId) external view returns (Offer memory);
    /// @notice What a pay-per-use channel needs of `modelId`'s offer, in one call: its currency (by id
    /// and address; id 0 means no offer was ever set), whether the offer is active and the currency
    /// allowed, and the price per call.
    function payPerUseOf(uint256 modelId)
        external
        view
        returns (uint8 currencyId, address currency, bool active, bool allowed, uint128 pricePerCall);
    /// @notice The currency with id `currencyId` (ids are never reused; 0 and unknown ids give ETH's
    /// address(0), which is then not allowed).
    function currencyAt(uint8 currencyId) external view returns (address);
    /// @notice Every currency the admin has ever allowed (some may be disallowed since), in id order.
    function currencies() external view returns (address[] memory);
    /// @notice The live listing of licence `licenceId`, or an empty one (zero seller, currency and price)
    /// if it has none or its listing is stale: the licence changed holder since it was listed (even if
    /// it came back to the seller) or was terminated. A stale listing stays stored until `delist` or
    /// the next `list`, but `buyListed` refuses it with `NotListed`.
    function listingOf(uint256 licenceId) external view returns (Listing memory);
    /// @notice Dispute `disputeId` (all zero if it was never opened).
    function disputeOf(uint256 disputeId) external view returns (Dispute memory);
    /// @notice Who shares a payment carrying `payeeSet`, and in what basis points.
    function payeesOf(uint256 payeeSet) external view returns (address[] memory payees, uint16[] memory bps);
    /// @notice What `account` may withdraw now in `currency`.
    function owed(address account, address currency) external view returns (uint256);
    /// @notice Held (unsettled) amount and fee of `payeeSet` in `currency` released at `releaseAt`.
    function held(uint256 payeeSet, address currency, uint64 releaseAt) external view returns (uint128 amount, uint128 fee);
    /// @notice Whether `currency` is allowed now.
    function isCurrencyAllowed(address currency) external view returns (bool);
    /// @notice The platform fee of payments made now, in basis points.
    function feeBps() external view returns (uint16);
    /// @notice Who receives the platform fees settled from now on.
    function treasury() external view returns (address);
    /// @notice The payee set that a payment for `modelId` made now carries (its split, or its owner).
    function payeeSetOf(uint256 modelId) external view returns (uint256);
    /// @notice The disputable held payment of `payer` for `licenceId` to `payeeSet` in `currency`.
    /// @return amount Held amount in the smallest unit (0 if none).
    /// @return fee Its platform fee part.
    /// @return releaseAt When it is released (seconds); disputes must open before.
    function receiptOf(uint256 licenceId, address payer, uint256 payeeSet, address currency)
        external
        view
        returns (uint256 amount, uint256 fee, uint64 releaseAt);
    /// @notice The `releaseAt` (seconds) a payment made now is held until.
    function currentReleaseAt() external view returns (uint64);
    /// @notice Number of disputes opened so far (the highest dispute id).
    function disputeCount() external view returns (uint256);
}
