// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title AIModelToken
/// @notice daimm's utility token (AIMT): an ERC-20 with ERC-2612 permit and 18 decimals. The whole
/// supply is minted once, to the treasury, at deployment; there is no mint or burn afterwards.
/// @dev Invariant: `totalSupply()` equals the constructor's `supply` forever.
contract AIModelToken is ERC20, ERC20Permit {
    /// @notice The treasury was zero.
    error ZeroTreasury();

    /// @param treasury Receives the whole supply.
    /// @param supply Total supply, in the smallest unit (10**18 per token).
    constructor(address treasury, uint256 supply) ERC20("daimm AI Model Token", "AIMT") ERC20Permit("daimm AI Model Token") {
        if (treasury == address(0)) revert ZeroTreasury();
        _mint(treasury, supply);
    }
}
