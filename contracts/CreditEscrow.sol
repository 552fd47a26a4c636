// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {ICreditEscrow} from "./interfaces/ICreditEscrow.sol";
import {IRelayerRegistry} from "./interfaces/IRelayerRegistry.sol";
import {IRentalEscrow} from "./interfaces/IRentalEscrow.sol";
import {ISessionRegistry} from "./interfaces/ISessionRegistry.sol";

/// @title CreditEscrow
/// @notice Pay-per-use payment channels, one per (payer, model, relayer), in the currency of the
/// model's offer at the channel's first deposit.
/// @dev Invariants, per channel:
/// - `redeemed <= deposited` at all times, and `redeemed` only grows;
/// - this contract holds, per currency, exactly the sum of `deposited - redeemed` over its channels;
/// - a redeemed amount leaves for the RentalEscrow in the same transaction and is booked there with
///   `depositRevenue`, so the platform fee, the model's split and the dispute window apply to it.
/// `deposited` is the credit put in minus the credit reclaimed; `cumulativeAmount` in a voucher is
/// everything the payer has agreed to pay on the channel, so a voucher the relayer failed to redeem
/// before a reclaim stays payable from a later deposit on the same channel.
/// IMPORTANT: this contract must hold the RentalEscrow's REVENUE_SOURCE_ROLE, or every redemption
/// reverts (the payer can still reclaim after the timeout).
/// IMPORTANT: ERC-20 amounts are booked at the balance actually received, as the RentalEscrow does:
/// a fee-on-transfer token credits the channel with what arrived (the payer bears the fee of their
/// deposit), and a redemption books at the RentalEscrow what arrived there (the payees bear that fee).
/// Every wei booked was received; `CreditDeposited.amount` is the credited amount.
/// - a session never has more redeemed under it than its `spendCap`, whatever the batches.
/// NOTE: a voucher signed by a session key is paid from its holder's channel; only the relayer the
/// session names redeems it. Revocation and expiry of the session are not checked at redemption:
/// they bound the calls a relayer serves (it checks them before each call), and a call served stays
/// payable, or a holder could revoke after being served and never pay.
/// NOTE: signatures are checked with OpenZeppelin's SignatureChecker: ECDSA (refusing high-s and
/// malformed signatures) for accounts without code, ERC-1271 for contract wallets.
contract CreditEscrow is ICreditEscrow, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ---------------------------------------------------------------- types

    /// @dev EIP-712 type hash of `Voucher`.
    bytes32 private constant VOUCHER_TYPEHASH =
        keccak256("Voucher(uint256 modelId,address relayer,uint256 cumulativeAmount,uint256 chainId,address escrow)");

    // ---------------------------------------------------------------- storage

    IRentalEscrow private immutable _escrow;
    IRelayerRegistry private immutable _relayers;
    uint64 private immutable _timeout;
    ISessionRegistry private immutable _sessions;

    /// @dev Credit a channel holds at most: amounts are stored as uint96 (2**96 - 1 base units,
    /// about 7.9e10 tokens of 18 decimals).
    uint256 private constant MAX_CREDIT = type(uint96).max;
    /// @dev The longest `timeout`: expiries are stored as uint40, which a uint32 timeout added to
    /// any timestamp before the year 36,000 cannot overflow.
    uint64 private constant MAX_TIMEOUT = type(uint32).max;

    /// @dev A channel as stored, in one slot: the two amounts, the expiry, and the currency by its
    /// RentalEscrow id (`Channel`, the interface's order, would take three slots: a first deposit
    /// then writes two new slots more and a redemption reads two cold slots more). `channelOf`
    /// returns it as a `Channel`.
    struct StoredChannel {
        uint96 deposited;
        uint96 redeemed;
        uint40 expiresAt;
        uint8 currencyId;
    }

    mapping(address payer => mapping(uint256 modelId => mapping(address relayer => StoredChannel))) private
        _channels;
    /// @dev Value redeemed under each session (by its SessionRegistry digest), at most its `spendCap`.
    mapping(bytes32 sessionHash => uint256) private _sessionSpent;

    // ---------------------------------------------------------------- constructor

    /// @param escrow The RentalEscrow that receives redeemed amounts as revenue.
    /// @param relayers The RelayerRegistry that says which relayers serve a model.
    /// @param sessions The SessionRegistry whose sessions' keys may sign vouchers.
    /// @param timeout_ Seconds a channel stays redeemable after its last deposit (1 to 2**32 - 1).
    constructor(address escrow, address relayers, address sessions, uint64 timeout_)
        EIP712("daimm CreditEscrow", "1")
    {
        if (escrow == address(0) || relayers == address(0) || sessions == address(0)) revert ZeroAddress();
        if (timeout_ == 0 || timeout_ > MAX_TIMEOUT) revert InvalidTimeout(timeout_);
        _escrow = IRentalEscrow(escrow);
        _relayers = IRelayerRegistry(relayers);
        _timeout = timeout_;
        _sessions = ISessionRegistry(sessions);
    }

    // ---------------------------------------------------------------- external

    /// @inheritdoc ICreditEscrow
    function deposit(uint256 modelId, address relayer, uint256 amount) external payable nonReentrant {
        (uint8 currencyId, address currency, bool active, bool allowed, uint128 pricePerCall) =
            _escrow.payPerUseOf(modelId);
        if (!active || pricePerCall == 0) revert NoPayPerUse(modelId);
        if (!_relayers.isAuthorised(modelId, relayer)) revert RelayerNotAuthorised(modelId, relayer);
        if (amount == 0) revert ZeroAmount();

        StoredChannel storage channel = _channels[msg.sender][modelId][relayer];
        if (!allowed) revert CurrencyNotAllowed(currency);
        if (channel.expiresAt == 0) {
            channel.currencyId = currencyId;
        } else if (channel.currencyId != currencyId) {
            revert CurrencyChanged(_escrow.currencyAt(channel.currencyId), currency);
        }

        // NOTE: interaction before effects, on purpose: an ERC-20 is credited at the balance actually
        // received (as the RentalEscrow books payments), which is only known after the transfer.
        // `nonReentrant` guards the gap, and the token is one the RentalEscrow allows.
        uint256 received = _collect(currency, amount);
        uint256 deposited = uint256(channel.deposited) + received;
        if (deposited > MAX_CREDIT) revert DepositTooLarge(deposited, MAX_CREDIT);
        channel.deposited = uint96(deposited);
        uint64 expiresAt = uint64(block.timestamp) + _timeout;
        // NOTE: cannot truncate: block.timestamp < 2**39 for ~17,000 years and timeout < 2**32.
        channel.expiresAt = uint40(expiresAt);
        emit CreditDeposited(msg.sender, modelId, relayer, currency, received, expiresAt);
    }

    /// @inheritdoc ICreditEscrow
    function redeem(address payer, Voucher calldata voucher, bytes calldata signature)
        external
        nonReentrant
        returns (uint256 paid)
    {
        return _redeem(payer, voucher, payer, signature, 0, 0);
    }

    /// @inheritdoc ICreditEscrow
    /// @dev Each voucher is redeemed as `redeem` does it, one after the other, so two vouchers of one
    /// channel in a batch must be in increasing order. What a batch saves is the transaction's base
    /// cost and the cold accounts and slots its vouchers share (token, escrow, bucket).
    function redeemBatch(address[] calldata payers, Voucher[] calldata vouchers, bytes[] calldata signatures)
        external
        nonReentrant
        returns (uint256 paid)
    {
        uint256 n = vouchers.length;
        if (payers.length != n || signatures.length != n) {
            revert BatchLengthMismatch(payers.length, n, signatures.length);
        }
        if (n == 0) revert EmptyBatch();
        for (uint256 i; i < n; ++i) {
            paid += _redeem(payers[i], vouchers[i], payers[i], signatures[i], 0, 0);
        }
    }

    /// @inheritdoc ICreditEscrow
    function redeemSessionBatch(
        ISessionRegistry.Session[] calldata sessions,
        bytes[] calldata sessionSignatures,
        Voucher[] calldata vouchers,
        bytes[] calldata signatures
    ) external nonReentrant returns (uint256 paid) {
        uint256 n = vouchers.length;
        if (sessions.length != n || signatures.length != n || sessionSignatures.length != n) {
            revert BatchLengthMismatch(sessions.length, n, signatures.length);
        }
        if (n == 0) revert EmptyBatch();
        for (uint256 i; i < n; ++i) {
            ISessionRegistry.Session calldata session = sessions[i];
            Voucher calldata voucher = vouchers[i];
            if (session.relayer != voucher.relayer) revert SessionWrongRelayer(session.relayer, voucher.relayer);
            if (session.modelId != 0 && session.modelId != voucher.modelId) {
                revert SessionWrongModel(session.modelId, voucher.modelId);
            }
            bytes32 sessionHash = _sessions.sessionDigest(session);
            if (!SignatureChecker.isValidSignatureNow(session.holder, sessionHash, sessionSignatures[i])) {
                revert InvalidSessionSignature(sessionHash);
            }
            paid += _redeem(session.holder, voucher, session.key, signatures[i], sessionHash, session.spendCap);
        }
    }

    /// @inheritdoc ICreditEscrow
    function reclaim(uint256 modelId, address relayer) external nonReentrant returns (uint256 amount) {
        StoredChannel storage channel = _channels[msg.sender][modelId][relayer];
        if (block.timestamp < channel.expiresAt) revert ChannelLive(channel.expiresAt);
        unchecked {
            // Cannot underflow: redeemed <= deposited (invariant).
            amount = uint256(channel.deposited) - channel.redeemed;
        }
        if (amount == 0) revert NothingToReclaim();

        channel.deposited = channel.redeemed;
        address currency = _escrow.currencyAt(channel.currencyId);
        emit CreditReclaimed(msg.sender, modelId, relayer, amount);

        if (currency == address(0)) {
            (bool ok,) = payable(msg.sender).call{value: amount}("");
            if (!ok) revert EthTransferFailed(msg.sender, amount);
        } else {
            IERC20(currency).safeTransfer(msg.sender, amount);
        }
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICreditEscrow
    function channelOf(address payer, uint256 modelId, address relayer) external view returns (Channel memory) {
        StoredChannel storage channel = _channels[payer][modelId][relayer];
        address currency = channel.expiresAt == 0 ? address(0) : _escrow.currencyAt(channel.currencyId);
        return Channel(currency, channel.deposited, channel.redeemed, channel.expiresAt);
    }

    /// @inheritdoc ICreditEscrow
    function voucherDigest(Voucher calldata voucher) external view returns (bytes32) {
        return _voucherDigest(voucher);
    }

    /// @inheritdoc ICreditEscrow
    function timeout() external view returns (uint64) {
        return _timeout;
    }

    /// @inheritdoc ICreditEscrow
    function rentalEscrow() external view returns (address) {
        return address(_escrow);
    }

    /// @inheritdoc ICreditEscrow
    function relayerRegistry() external view returns (address) {
        return address(_relayers);
    }

    /// @inheritdoc ICreditEscrow
    function sessionRegistry() external view returns (address) {
        return address(_sessions);
    }

    /// @inheritdoc ICreditEscrow
    function sessionSpent(bytes32 sessionHash) external view returns (uint256) {
        return _sessionSpent[sessionHash];
    }

    // ---------------------------------------------------------------- internal

    /// @dev Checks, then effects (the session's spend, the channel's `redeemed`), then the payment to
    /// the RentalEscrow. `signer` signed the voucher: the payer, or the key of the session
    /// `sessionHash` (0 for none) whose cap is `spendCap`.
    function _redeem(
        address payer,
        Voucher calldata voucher,
        address signer,
        bytes calldata signature,
        bytes32 sessionHash,
        uint256 spendCap
    ) internal returns (uint256 paid) {
        StoredChannel storage channel;
        (channel, paid) = _checkVoucher(payer, voucher, signer, signature);
        if (sessionHash != 0) {
            // NOTE: cannot overflow: both terms are at most a uint96 (a channel's deposit).
            uint256 spent = _sessionSpent[sessionHash] + paid;
            if (spent > spendCap) revert SessionCapExceeded(sessionHash, spent, spendCap);
            _sessionSpent[sessionHash] = spent;
            emit SessionSpent(sessionHash, paid, spent);
        }
        // NOTE: the cast cannot truncate: cumulativeAmount <= deposited, which is a uint96.
        channel.redeemed = uint96(voucher.cumulativeAmount);
        emit VoucherRedeemed(payer, voucher.modelId, voucher.relayer, voucher.cumulativeAmount, paid);
        _payOut(payer, voucher.modelId, _escrow.currencyAt(channel.currencyId), paid);
    }

    /// @dev The checks of a redemption; returns the channel and the amount it pays.
    function _checkVoucher(address payer, Voucher calldata voucher, address signer, bytes calldata signature)
        internal
        view
        returns (StoredChannel storage channel, uint256 paid)
    {
        if (voucher.chainId != block.chainid || voucher.escrow != address(this)) {
            revert WrongDomain(voucher.chainId, voucher.escrow);
        }
        if (msg.sender != voucher.relayer) revert NotRelayer(voucher.relayer, msg.sender);
        channel = _channels[payer][voucher.modelId][voucher.relayer];
        if (block.timestamp >= channel.expiresAt) revert ChannelExpired(channel.expiresAt);
        uint256 redeemed = channel.redeemed;
        uint256 deposited = channel.deposited;
        if (voucher.cumulativeAmount <= redeemed) revert VoucherNotMonotonic(voucher.cumulativeAmount, redeemed);
        if (voucher.cumulativeAmount > deposited) revert VoucherAboveDeposit(voucher.cumulativeAmount, deposited);
        if (!SignatureChecker.isValidSignatureNow(signer, _voucherDigest(voucher), signature)) {
            revert InvalidSignature();
        }
        unchecked {
            // Cannot underflow: cumulativeAmount > redeemed was checked above.
            paid = voucher.cumulativeAmount - redeemed;
        }
    }

    /// @dev Sends `paid` to the RentalEscrow, booked as revenue of `modelId` from `payer`.
    function _payOut(address payer, uint256 modelId, address currency, uint256 paid) internal {
        if (currency == address(0)) {
            _escrow.depositRevenue{value: paid}(modelId, payer, currency, paid);
        } else {
            // The RentalEscrow books what it actually received (less than `paid` for a
            // fee-on-transfer token: the token's fee costs the payees, as in the RentalEscrow).
            IERC20 token = IERC20(currency);
            uint256 before = token.balanceOf(address(_escrow));
            token.safeTransfer(address(_escrow), paid);
            uint256 received = token.balanceOf(address(_escrow)) - before;
            _escrow.depositRevenue(modelId, payer, currency, received);
        }
    }

    /// @dev Take `amount` of `currency` from the caller; returns what this contract received.
    function _collect(address currency, uint256 amount) internal returns (uint256 received) {
        if (currency == address(0)) {
            if (msg.value != amount) revert WrongPayment(amount, msg.value);
            return amount;
        }
        if (msg.value != 0) revert WrongPayment(0, msg.value);
        IERC20 token = IERC20(currency);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        received = token.balanceOf(address(this)) - before;
        if (received == 0) revert ZeroAmount();
    }

    function _voucherDigest(Voucher calldata voucher) internal view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    VOUCHER_TYPEHASH,
                    voucher.modelId,
                    voucher.relayer,
                    voucher.cumulativeAmount,
                    voucher.chainId,
                    voucher.escrow
                )
            )
        );
    }
}
