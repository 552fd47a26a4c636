// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title HostileReentrantToken
/// @notice TEST ONLY: an ERC-20 that, inside `transfer`/`transferFrom`, calls back into a target with
/// an armed payload (re-entering the escrow mid-payment), and records whether the re-entry worked.
contract HostileReentrantToken is ERC20 {
    address public target;
    bytes public payload;
    bool public armed;
    uint256 public attempts;
    bool public reentered;
    bytes public lastRevert;

    constructor() ERC20("Reentrant Token", "REENT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice On the next transfer between two non-zero addresses, call `target_` with `payload_`.
    function arm(address target_, bytes calldata payload_) external {
        (target, payload, armed) = (target_, payload_, true);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (armed && from != address(0) && to != address(0)) {
            armed = false;
            ++attempts;
            (bool ok, bytes memory ret) = target.call(payload);
            reentered = ok;
            lastRevert = ret;
        }
    }
}
