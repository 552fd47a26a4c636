// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Payments
/// @notice Fee, revenue-split, refund and settlement-time arithmetic of the RentalEscrow, pure so that
/// it can be tested alone (see contracts/test/MockPayments.sol).
/// @dev Invariants: `fee(a, b) <= a` for `b <= BPS`; `shares` hands out exactly `net` (the rounding dust
/// goes to the first payee); `splitRefund` returns parts that add back to the whole.
library Payments {
    /// @notice 100% in basis points.
    uint256 internal constant BPS = 10_000;

    /// @notice The platform fee on `amount` at `feeBps` basis points, rounded down (the payees keep
    /// the rounding).
    function fee(uint256 amount, uint256 feeBps) internal pure returns (uint256) {
        return (amount * feeBps) / BPS;
    }

    /// @notice When a payment made at `nowSeconds` is released: `nowSeconds + window` rounded up to a
    /// multiple of `granularity`, so that payments of the same hour share one settlement bucket.
    /// @param nowSeconds Payment time, in seconds.
    /// @param window Dispute window, in seconds.
    /// @param granularity Settlement granularity, in seconds (> 0).
    function releaseAt(uint256 nowSeconds, uint256 window, uint256 granularity) internal pure returns (uint64) {
        uint256 t = nowSeconds + window;
        return uint64(((t + granularity - 1) / granularity) * granularity);
    }

    /// @notice Split `net` among payees in basis points (summing to `BPS`); each share is rounded down
    /// and the dust (less than one unit per payee) goes to the first payee.
    /// @return amounts The amount of each payee, summing to exactly `net`.
    function shares(uint256 net, uint16[] memory bps) internal pure returns (uint256[] memory amounts) {
        uint256 n = bps.length;
        amounts = new uint256[](n);
        uint256 paid;
        for (uint256 i = 1; i < n; ++i) {
            uint256 share = (net * bps[i]) / BPS;
            amounts[i] = share;
            paid += share;
        }
        // `paid <= net` since the bps sum to BPS and every share rounds down.
        amounts[0] = net - paid;
    }

    /// @notice The refunded part of a disputed `amount` (with its `fee` part) at `refundBps`.
    /// @return refund Gross amount back to the payer, rounded down.
    /// @return refundFee The part of `fee` refunded with it, rounded down.
    /// @dev The released rest is `amount - refund` with fee `fee - refundFee`; since `fee <= amount`, the
    /// released fee never exceeds the released amount.
    function splitRefund(uint256 amount, uint256 fee_, uint256 refundBps)
        internal
        pure
        returns (uint256 refund, uint256 refundFee)
    {
        refund = (amount * refundBps) / BPS;
        refundFee = (fee_ * refundBps) / BPS;
    }
}
