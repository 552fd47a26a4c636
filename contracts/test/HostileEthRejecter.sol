// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title HostileEthRejecter
/// @notice TEST ONLY: a contract payee (say, a model owner's contract wallet) that rejects ETH.
/// It can make calls (publish a model, set an offer, withdraw) through `execute`.
contract HostileEthRejecter {
    error Rejected();

    function execute(address to, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC721Received.selector;
    }

    receive() external payable {
        revert Rejected();
    }
}
