// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {PayeeSets} from "../libraries/PayeeSets.sol";
import {Payments} from "../libraries/Payments.sol";

/// @title MockPayments
/// @notice TEST ONLY: exposes the Payments and PayeeSets libraries so they can be tested alone.
contract MockPayments {
    function fee(uint256 amount, uint256 feeBps) external pure returns (uint256) {
        return Payments.fee(amount, feeBps);
    }

    function releaseAt(uint256 nowSeconds, uint256 window, uint256 granularity) external pure returns (uint64) {
        return Payments.releaseAt(nowSeconds, window, granularity);
    }

    function shares(uint256 net, uint16[] memory bps) external pure returns (uint256[] memory) {
        return Payments.shares(net, bps);
    }

    function splitRefund(uint256 amount, uint256 fee_, uint256 refundBps) external pure returns (uint256, uint256) {
        return Payments.splitRefund(amount, fee_, refundBps);
    }

    function splitId(uint256 modelId, uint256 nonce) external pure returns (uint256) {
        return PayeeSets.splitId(modelId, nonce);
    }

    function isSplit(uint256 payeeSet) external pure returns (bool) {
        return PayeeSets.isSplit(payeeSet);
    }
}
