// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

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
    error NotModelOwner(uint256 modelId, address caller);
    error OfferInactive(uint256 modelId);
    error InvalidOffer(uint256 modelId);
    error CurrencyNotAllowed(address currency);
    error DurationOutOfRange(uint256 modelId, uint256 periods, uint256 minPeriods, uint256 maxPeriods);
    error NotForSale(uint256 modelId);
    error PriceAboveMax(uint256 price, uint256 maxPrice);
    error WrongPayment(uint256 expected, uint256 received);
    error FeeTooHigh(uint16 bps, uint16 maxBps);
    error InvalidSplit();
    error TooManyPayees(uint256 count, uint256 max);
    error NotLicenceHolder(uint256 licenceId, address caller);
    error NotListed(uint256 licenceId);
    error DisputeWindowClosed(uint256 licenceId);
    error NothingToDispute(uint256 licenceId);
    error DisputeNotOpen(uint256 disputeId);
    error InvalidRefund(uint16 refundBps);
    error NotMatured(uint256 releaseAt, uint256 nowSeconds);
    error NothingOwed(address account, address currency);
    error EthTransferFailed(address to, uint256 amount);
    error ZeroAddress();
    /// @notice Model `modelId` does not exist in the registry.
    error UnknownModel(uint256 modelId);
    /// @notice The escrow is not approved to move licence `licenceId` (approve it before listing).
    error NotApproved(uint256 licenceId);
    /// @notice Nothing is held for `payeeSet` in `currency` released at `releaseAt`.
    /// @notice The admin already allowed `max` distinct currencies.
    error TooManyCurrencies(uint256 max);
    error NothingHeld(uint256 payeeSet, address currency, uint64 releaseAt);

    // ---------------------------------------------------------------- events
    event OfferSet(uint256 indexed modelId, Offer offer);
    event SplitSet(uint256 indexed modelId, uint256 indexed payeeSet, address[] payees, uint16[] bps);
    event CurrencyAllowed(address indexed currency, bool allowed);
    event FeeSet(uint16 feeBps);
    event TreasurySet(address indexed treasury);
    /// @notice A payment entered escrow. `payeeSet` identifies who shares `amount - fee` (see `payeesOf`);
    /// it is released at `releaseAt` (seconds).
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
    event Rented(uint256 indexed modelId, uint256 indexed licenceId, address indexed renter, uint256 periods, uint64 expires, uint256 price);
    event Bought(uint256 indexed modelId, uint256 indexed licenceId, address indexed buyer, uint256 price);
    event Listed(uint256 indexed licenceId, address indexed seller, address currency, uint256 price);
    event Delisted(uint256 indexed licenceId);
    event Resold(uint256 indexed licenceId, uint256 indexed modelId, address indexed buyer, address seller, uint256 price, uint256 royalty);
    event DisputeOpened(uint256 indexed disputeId, uint256 indexed licenceId, address indexed payer, uint256 amount);
    /// @notice Dispute `disputeId` took `amount` (of which `fee` is the platform fee) out of the held
    /// payments of `payeeSet` in `currency` released at `releaseAt`.
    event PaymentDisputed(
        uint256 indexed disputeId, uint256 indexed payeeSet, address indexed currency, uint64 releaseAt, uint256 amount, uint256 fee
    );
    event DisputeResolved(uint256 indexed disputeId, Resolution resolution, uint256 refunded, uint256 released);
    event Settled(uint256 indexed payeeSet, address indexed currency, uint64 indexed releaseAt, uint256 amount, uint256 fee);
    event Credited(address indexed account, address indexed currency, uint256 amount);
    event Withdrawn(address indexed account, address indexed currency, uint256 amount);
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
    function setCurrencyAllowed(address currency, bool allowed) external;
    function setFee(uint16 feeBps) external;
    function setTreasury(address treasury) external;

    // ---------------------------------------------------------------- views
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
    /// @notice The live listing of licence `licenceId`, or an empty one (zero seller, currency and price)
    /// if it has none or its listing is stale: the licence changed holder since it was listed (even if
    /// it came back to the seller) or was terminated. A stale listing stays stored until `delist` or
    /// the next `list`, but `buyListed` refuses it with `NotListed`.
    function listingOf(uint256 licenceId) external view returns (Listing memory);
    function disputeOf(uint256 disputeId) external view returns (Dispute memory);
    /// @notice Who shares a payment carrying `payeeSet`, and in what basis points.
    function payeesOf(uint256 payeeSet) external view returns (address[] memory payees, uint16[] memory bps);
    /// @notice What `account` may withdraw now in `currency`.
    function owed(address account, address currency) external view returns (uint256);
    /// @notice Held (unsettled) amount and fee of `payeeSet` in `currency` released at `releaseAt`.
    function held(uint256 payeeSet, address currency, uint64 releaseAt) external view returns (uint128 amount, uint128 fee);
    function isCurrencyAllowed(address currency) external view returns (bool);
    function feeBps() external view returns (uint16);
    function treasury() external view returns (address);
    function disputeWindow() external view returns (uint64);
    function MAX_FEE_BPS() external view returns (uint16);
    function MAX_PAYEES() external view returns (uint256);
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
