// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";

/// @title ReentrantReceiver
/// @notice Test-only attacker: a contract account that, when it receives an NFT or native
/// coin, calls back into `target` with a prepared payload. With `swallow` it records whether
/// the re-entry worked and lets the outer call finish; without it the failure bubbles up.
contract ReentrantReceiver is IERC721Receiver {
    address public target;
    bytes public payload;
    bool public swallow;
    bool public armed;
    bool public reentrySucceeded;
    uint256 public reentryAttempts;

    /// @notice Act as an ordinary account: forward a call (approvals, staking, listing);
    /// a failure bubbles up with the callee's revert data.
    function execute(address to, bytes calldata data, uint256 value) external payable returns (bytes memory) {
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok, bytes memory result) = to.call{value: value}(data);
        if (!ok) _bubble(result);
        return result;
    }

    function arm(address target_, bytes calldata payload_, bool swallow_) external {
        target = target_;
        payload = payload_;
        swallow = swallow_;
        armed = true;
    }

    function onERC721Received(address, address, uint256, bytes calldata) external returns (bytes4) {
        _reenter();
        return IERC721Receiver.onERC721Received.selector;
    }

    receive() external payable {
        _reenter();
    }

    function _reenter() private {
        if (!armed) return;
        armed = false;
        ++reentryAttempts;
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok, bytes memory reason) = target.call(payload);
        if (ok) {
            reentrySucceeded = true;
        } else if (!swallow) {
            _bubble(reason);
        }
    }

    function _bubble(bytes memory reason) private pure {
        assembly ("memory-safe") {
            revert(add(reason, 0x20), mload(reason))
        }
    }
}
