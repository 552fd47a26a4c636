// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ISessionRegistry} from "./ISessionRegistry.sol";

/// @title ICreditEscrow
/// @notice Pay-per-use payment channels. A user deposits credit for one model and one relayer (in
/// the currency of the model's offer); each request carries an EIP-712 voucher signed by the user for
/// the cumulative amount spent so far; the relayer redeems the latest voucher in one transaction for
/// many calls. Redeemed amounts go to the RentalEscrow as revenue, where fee, split and dispute
/// window apply. After `timeout` seconds without a deposit the user may reclaim what was not redeemed.
/// IMPORTANT: vouchers are monotonic: a voucher for less than what was already redeemed is refused, as
/// is one above the deposit. The relayer must redeem before the channel times out.
interface ICreditEscrow {
    /// @notice The signed voucher (EIP-712 primary type `Voucher`).
    /// @param modelId The model of the channel.
    /// @param relayer The relayer of the channel, the only account that may redeem the voucher.
    /// @param cumulativeAmount Everything the payer has agreed to pay on this channel, in the smallest unit.
    /// @param chainId The chain the voucher is valid on.
    /// @param escrow The CreditEscrow the voucher is valid for.
    struct Voucher {
        uint256 modelId;
        address relayer;
        uint256 cumulativeAmount;
        uint256 chainId;
        address escrow;
    }

    /// @notice One channel: (payer, modelId, relayer), as `channelOf` returns it.
    /// @param currency The currency of its first deposit (kept for life), `address(0)` for ETH.
    /// @param deposited Credit put in minus credit reclaimed, in the smallest unit.
    /// @param redeemed Credit the relayer has redeemed so far (only grows; at most `deposited`).
    /// @param expiresAt When the channel stops being redeemable and its rest reclaimable, in seconds.
    struct Channel {
        address currency;
        uint128 deposited;
        uint128 redeemed;
        uint64 expiresAt;
    }

    /// @notice `modelId`'s offer is inactive or has no price per call.
    error NoPayPerUse(uint256 modelId);
    /// @notice `relayer` is not authorised (or not active) for `modelId` in the RelayerRegistry.
    error RelayerNotAuthorised(uint256 modelId, address relayer);
    /// @notice A deposit of nothing (or an ERC-20 transfer that delivered nothing).
    error ZeroAmount();
    /// @notice `received` wei were sent where `expected` were due (the deposit in ETH, or 0 for an ERC-20).
    error WrongPayment(uint256 expected, uint256 received);
    /// @notice `caller` is not the voucher's relayer `expected`.
    error NotRelayer(address expected, address caller);
    /// @notice The voucher names chain `chainId` and escrow `escrow`, not this chain and contract.
    error WrongDomain(uint256 chainId, address escrow);
    /// @notice The signature is not the payer's over the voucher (ECDSA, or ERC-1271 for a contract).
    error InvalidSignature();
    /// @notice The voucher's `cumulativeAmount` is not above what was already `redeemed`.
    error VoucherNotMonotonic(uint256 cumulativeAmount, uint256 redeemed);
    /// @notice The voucher's `cumulativeAmount` is above what the channel holds (`deposited`).
    error VoucherAboveDeposit(uint256 cumulativeAmount, uint256 deposited);
    /// @notice The channel expired at `expiresAt` (seconds): vouchers can no longer be redeemed.
    error ChannelExpired(uint64 expiresAt);
    /// @notice The channel is live until `expiresAt` (seconds): its credit cannot be reclaimed yet.
    error ChannelLive(uint64 expiresAt);
    /// @notice Everything deposited on the channel was redeemed or reclaimed already.
    error NothingToReclaim();
    /// @notice Sending `amount` wei to `to` failed.
    error EthTransferFailed(address to, uint256 amount);
    /// @notice The model's offer is now in `offerCurrency`, but this channel holds `channelCurrency`;
    /// a channel keeps the currency of its first deposit for life (vouchers do not name a currency).
    error CurrencyChanged(address channelCurrency, address offerCurrency);
    /// @notice A constructor argument was the zero address.
    error ZeroAddress();
    /// @notice The offer's currency is no longer allowed by the RentalEscrow (it could not be redeemed).
    error CurrencyNotAllowed(address currency);
    /// @notice The channel timeout must be more than zero seconds.
    error InvalidTimeout(uint64 timeout);
    /// @notice `redeemBatch` got arrays of different lengths.
    error BatchLengthMismatch(uint256 payers, uint256 vouchers, uint256 signatures);
    /// @notice `redeemBatch` got no voucher.
    error EmptyBatch();
    /// @notice A channel holds at most `max` (2**96 - 1 base units) of credit at a time.
    error DepositTooLarge(uint256 deposited, uint256 max);
    /// @notice The session does not name the voucher's relayer (a session that spends names one).
    error SessionWrongRelayer(address sessionRelayer, address voucherRelayer);
    /// @notice The session is for another model than the voucher's.
    error SessionWrongModel(uint256 sessionModelId, uint256 voucherModelId);
    /// @notice The session was not signed by its holder.
    error InvalidSessionSignature(bytes32 sessionHash);
    /// @notice Redeeming would take the session's pay-per-use spend to `spent`, past its `spendCap`.
    error SessionCapExceeded(bytes32 sessionHash, uint256 spent, uint256 spendCap);

    /// @notice `payer` added `amount` (what arrived) of `currency` to its channel for `modelId` served
    /// by `relayer`, which now expires at `expiresAt` (seconds).
    event CreditDeposited(address indexed payer, uint256 indexed modelId, address indexed relayer, address currency, uint256 amount, uint64 expiresAt);
    /// @notice `relayer` redeemed `payer`'s voucher for `cumulativeAmount` on its `modelId` channel,
    /// paying `paid` (the part not redeemed before) into the RentalEscrow as revenue.
    event VoucherRedeemed(address indexed payer, uint256 indexed modelId, address indexed relayer, uint256 cumulativeAmount, uint256 paid);
    /// @notice A voucher signed by a session key was redeemed: `paid` counted to the session,
    /// `spent` in all (smallest unit).
    event SessionSpent(bytes32 indexed sessionHash, uint256 paid, uint256 spent);
    /// @notice `payer` took back `amount` of unredeemed credit from its timed-out channel.
    event CreditReclaimed(address indexed payer, uint256 indexed modelId, address indexed relayer, uint256 amount);

    /// @notice Add `amount` of credit for `modelId` served by `relayer` (send `amount` as value for ETH
    /// offers); the offer must be active with a `pricePerCall`, and `relayer` authorised for the model.
    /// Extends the channel's expiry to now + `timeout`. An ERC-20 is credited at the amount received.
    function deposit(uint256 modelId, address relayer, uint256 amount) external payable;
    /// @notice Redeem the latest voucher signed by `payer`; only the voucher's relayer, before expiry.
    function redeem(address payer, Voucher calldata voucher, bytes calldata signature) external returns (uint256 paid);
    /// @notice Redeem several vouchers in one transaction, each checked as `redeem` checks it; any
    /// bad voucher reverts the whole batch (`BatchLengthMismatch` for arrays of different lengths,
    /// `EmptyBatch` for none). Returns the total paid out.
    function redeemBatch(address[] calldata payers, Voucher[] calldata vouchers, bytes[] calldata signatures)
        external
        returns (uint256 paid);
    /// @notice Redeem vouchers signed by session keys, each on its session's holder's channel and
    /// checked as `redeem` checks it, the signature being the session key's; plus: the session names
    /// the voucher's relayer (`SessionWrongRelayer`) and model or any model (`SessionWrongModel`), its
    /// holder signed it (`InvalidSessionSignature`, digest from the SessionRegistry), and what the
    /// session has redeemed, with this voucher's payment, stays within its `spendCap`
    /// (`SessionCapExceeded`). Revocation and expiry are not checked here: they bound which calls a
    /// relayer serves, and a call served stays payable (docs/CONTRACTS-EXT.md). Any bad voucher
    /// reverts the whole batch. Returns the total paid out.
    function redeemSessionBatch(
        ISessionRegistry.Session[] calldata sessions,
        bytes[] calldata sessionSignatures,
        Voucher[] calldata vouchers,
        bytes[] calldata signatures
    ) external returns (uint256 paid);
    /// @notice Take back unredeemed credit once the channel has timed out.
    function reclaim(uint256 modelId, address relayer) external returns (uint256 amount);

    /// @notice The channel of `payer` for `modelId` served by `relayer` (all zero if it never existed).
    function channelOf(address payer, uint256 modelId, address relayer) external view returns (Channel memory);
    /// @notice EIP-712 digest of `voucher` in this contract's domain (name "daimm CreditEscrow", version "1").
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32);
    /// @notice Seconds a channel stays redeemable after its last deposit.
    function timeout() external view returns (uint64);
    /// @notice The RentalEscrow that redeemed amounts are paid into.
    function rentalEscrow() external view returns (address);
    /// @notice The RelayerRegistry consulted at deposit.
    function relayerRegistry() external view returns (address);
    /// @notice The SessionRegistry whose sessions may spend (it computes their digests).
    function sessionRegistry() external view returns (address);
    /// @notice Pay-per-use value redeemed so far under the session `sessionHash` (smallest unit).
    function sessionSpent(bytes32 sessionHash) external view returns (uint256);
}
