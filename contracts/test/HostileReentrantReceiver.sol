// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";

/// @title HostileReentrantReceiver
/// @notice TEST ONLY: a licence holder and payee contract that, whenever it is called back (ERC-721
/// `onERC721Received` or a plain ETH transfer), replays one call it was armed with into its
/// target (the RentalEscrow's `rent`, `buy`, `buyListed` or `withdraw`, or the CreditEscrow's
/// `redeem` / `reclaim`), and records whether the re-entry succeeded and what it reverted with.
/// NOTE: it never reverts in its callbacks, so a test sees the outer call complete and can assert
/// that the re-entry was refused (`reentered == false`, `lastRevert` = ReentrancyGuardReentrantCall).
contract HostileReentrantReceiver is IERC721Receiver {
    address public target;
    bytes public payload;
    uint256 public payloadValue;
    bool public armed;
    uint256 public attempts;
    bool public reentered;
    bytes public lastRevert;

    receive() external payable {
        _attack();
    }

    /// @notice Arm: on the next callback, call `target_` with `payload_` and `value` wei.
    function arm(address target_, bytes calldata payload_, uint256 value) external {
        (target, payload, payloadValue, armed) = (target_, payload_, value, true);
    }

    /// @notice Make any call as this contract (to rent, approve, withdraw, ...).
    function execute(address to, bytes calldata data, uint256 value) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    function onERC721Received(address, address, uint256, bytes calldata) external returns (bytes4) {
        _attack();
        return IERC721Receiver.onERC721Received.selector;
    }

    function _attack() private {
        if (!armed) return;
        armed = false;
        ++attempts;
        (bool ok, bytes memory ret) = target.call{value: payloadValue}(payload);
        reentered = ok;
        lastRevert = ret;
    }
}
