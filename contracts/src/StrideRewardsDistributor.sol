// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";

/// @notice What the distributor needs from the game token: role-gated mint, allowance burn.
interface IRewardsToken {
    function mint(address to, uint256 amount) external;
    function burnFrom(address account, uint256 amount) external;
}

/// @title StrideRewardsDistributor
/// @notice The chain writer's one entry point: it holds MINTER_ROLE on the token and pays
/// each reward command at most once, keyed by the command id (the off-chain idempotency
/// key). A command already executed is skipped with `CommandSkipped`, never reverted, so a
/// batch resent after a crash or a reorg completes the rest and pays nothing twice. Burns
/// need the holder: an EIP-2612 permit naming this contract as spender, then `burnFrom`.
/// Only holders of SENDER_ROLE (the writer's sender addresses) may call.
contract StrideRewardsDistributor is AccessControl {
    bytes32 public constant SENDER_ROLE = keccak256("SENDER_ROLE");
    uint256 public constant MAX_BATCH = 512;

    IRewardsToken public immutable token;

    /// @notice Command id => true once minted or burned.
    mapping(bytes32 commandId => bool done) public executed;

    event RewardMinted(bytes32 indexed commandId, address indexed to, uint256 amount);
    event RewardBurned(bytes32 indexed commandId, address indexed from, uint256 amount);
    event CommandSkipped(bytes32 indexed commandId);

    error LengthMismatch(uint256 ids, uint256 recipients, uint256 amounts);
    error BatchTooLarge(uint256 size, uint256 max);
    error ZeroRecipient(bytes32 commandId);
    error ZeroAmount(bytes32 commandId);

    constructor(IRewardsToken token_, address admin, address sender) {
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(SENDER_ROLE, sender);
    }

    /// @notice Mint `amounts[i]` to `to[i]` for every command `ids[i]` not executed yet.
    /// @return minted how many commands this call paid (the others were skipped).
    function mintBatch(bytes32[] calldata ids, address[] calldata to, uint256[] calldata amounts)
        external
        onlyRole(SENDER_ROLE)
        returns (uint256 minted)
    {
        uint256 n = ids.length;
        if (to.length != n || amounts.length != n) {
            revert LengthMismatch(n, to.length, amounts.length);
        }
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        for (uint256 i = 0; i < n; ++i) {
            bytes32 id = ids[i];
            if (executed[id]) {
                emit CommandSkipped(id);
                continue;
            }
            if (to[i] == address(0)) revert ZeroRecipient(id);
            if (amounts[i] == 0) revert ZeroAmount(id);
            executed[id] = true;
            token.mint(to[i], amounts[i]);
            emit RewardMinted(id, to[i], amounts[i]);
            ++minted;
        }
    }

    /// @notice Burn `amount` of `from`'s tokens for command `id`, authorised by `from`'s
    /// EIP-2612 permit (spender: this contract). When the allowance is already there (the
    /// permit was submitted by someone else first) it is not submitted again; otherwise the
    /// permit's own error (ERC2612ExpiredSignature, ERC2612InvalidSigner) is the revert.
    /// @return burned false when the command had already been executed (skipped).
    function burnWithPermit(
        bytes32 id,
        address from,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external onlyRole(SENDER_ROLE) returns (bool burned) {
        if (executed[id]) {
            emit CommandSkipped(id);
            return false;
        }
        if (amount == 0) revert ZeroAmount(id);
        if (IERC20(address(token)).allowance(from, address(this)) < amount) {
            IERC20Permit(address(token)).permit(from, address(this), amount, deadline, v, r, s);
        }
        executed[id] = true;
        token.burnFrom(from, amount);
        emit RewardBurned(id, from, amount);
        return true;
    }
}
