// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title OwnedWallet1271
/// @notice A minimal smart-contract wallet with one owner key: it can act as an account
/// (`execute`) and answers EIP-1271 `isValidSignature` with the magic value when the owner
/// signed the hash. Wallet sign-in (EIP-4361) verifies contract wallets through it.
contract OwnedWallet1271 is IERC1271 {
    bytes4 internal constant MAGIC_VALUE = IERC1271.isValidSignature.selector; // 0x1626ba7e
    bytes4 internal constant INVALID = 0xffffffff;

    address public owner;

    event OwnerChanged(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error ZeroOwner();
    error CallFailed(bytes result);

    constructor(address owner_) {
        if (owner_ == address(0)) revert ZeroOwner();
        owner = owner_;
        emit OwnerChanged(address(0), owner_);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// @notice Hand the wallet to another key: signatures of the old one stop being valid.
    function setOwner(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroOwner();
        emit OwnerChanged(owner, newOwner);
        owner = newOwner;
    }

    /// @notice Act as an ordinary account on the owner's behalf.
    function execute(address to, bytes calldata data, uint256 value) external payable onlyOwner returns (bytes memory) {
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok, bytes memory result) = to.call{value: value}(data);
        if (!ok) revert CallFailed(result);
        return result;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError failure, ) = ECDSA.tryRecover(hash, signature);
        if (failure == ECDSA.RecoverError.NoError && signer == owner) return MAGIC_VALUE;
        return INVALID;
    }

    receive() external payable {}
}
