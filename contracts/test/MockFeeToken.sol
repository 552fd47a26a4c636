// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockFeeToken
/// @notice TEST ONLY: an ERC-20 that burns `FEE_BPS` of every transfer, to test that the escrow books
/// fee-on-transfer tokens at the amount actually received.
contract MockFeeToken is ERC20 {
    uint256 public constant FEE_BPS = 100; // 1%

    constructor() ERC20("Fee Token", "FEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, value);
        uint256 burnt = (value * FEE_BPS) / 10_000;
        super._update(from, address(0), burnt);
        super._update(from, to, value - burnt);
    }
}
