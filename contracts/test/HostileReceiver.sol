// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IRentalEscrow} from "../interfaces/IRentalEscrow.sol";

/// @title HostileReceiver
/// @notice TEST ONLY: a payee whose `receive` re-enters `withdraw` (or refuses ETH when `refuse` is set),
/// to test the escrow's reentrancy guard and `EthTransferFailed`.
contract HostileReceiver {
    IRentalEscrow public immutable escrow;
    bool public refuse;

    constructor(IRentalEscrow escrow_) {
        escrow = escrow_;
    }

    function setRefuse(bool refuse_) external {
        refuse = refuse_;
    }

    function withdraw(address currency) external returns (uint256) {
        return escrow.withdraw(currency);
    }

    receive() external payable {
        if (refuse) revert("refused");
        escrow.withdraw(address(0));
    }
}
