// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @notice Minimal interface of a bridged token the bridge may mint and burn.
interface IMintBurnToken {
    function mint(address to, uint256 amount) external;
    function burnFrom(address account, uint256 amount) external;
}

/// @title StrideBridge
/// @notice One side of a token bridge. On the home chain (LockRelease) outbound tokens are
/// locked here and inbound transfers release them; on a remote chain (MintBurn) outbound
/// tokens are burned (with the holder's allowance) and inbound transfers mint. Inbound
/// transfers need EIP-712 signatures from at least `threshold` distinct validators, are
/// executed once per (source chain, nonce), and are capped per rate-limit period.
contract StrideBridge is AccessControl, Pausable, ReentrancyGuard, EIP712 {
    using SafeERC20 for IERC20;

    enum Mode {
        LockRelease,
        MintBurn
    }

    /// @notice What validators sign: one outbound transfer seen on `srcChainId`.
    struct Transfer {
        uint256 srcChainId;
        uint256 nonce;
        address sender;
        address recipient;
        uint256 amount;
    }

    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant TRANSFER_TYPEHASH = keccak256(
        "Transfer(uint256 srcChainId,uint256 nonce,address sender,address recipient,uint256 amount)"
    );
    uint256 public constant MAX_VALIDATORS = 32;

    IERC20 public immutable token;
    Mode public immutable mode;

    address[] private _validators;
    mapping(address validator => bool) public isValidator;
    uint256 public threshold;

    mapping(uint256 chainId => bool) public peerChain;
    uint256 public outboundNonce;
    mapping(uint256 srcChainId => mapping(uint256 nonce => bool)) public processed;

    uint256 public ratePeriod;
    uint256 public rateLimit;
    uint256 public periodStart;
    uint256 public usedInPeriod;

    event BridgeOut(
        uint256 indexed nonce, uint256 indexed dstChainId, address indexed sender, address recipient, uint256 amount
    );
    event BridgeIn(
        uint256 indexed srcChainId, uint256 indexed nonce, address indexed recipient, address sender, uint256 amount
    );
    event ValidatorsChanged(address[] validators, uint256 threshold);
    event PeerChainChanged(uint256 indexed chainId, bool trusted);
    event RateLimitChanged(uint256 period, uint256 limit);

    error ZeroAmount();
    error ZeroAddress();
    error UnknownChain(uint256 chainId);
    error AlreadyProcessed(uint256 srcChainId, uint256 nonce);
    error InvalidValidatorSet();
    error NotEnoughSignatures(uint256 valid, uint256 required);
    error SignersNotSorted();
    error NotValidator(address signer);
    error RateLimitExceeded(uint256 requested, uint256 available);

    constructor(
        IERC20 token_,
        Mode mode_,
        address admin,
        address[] memory validators_,
        uint256 threshold_,
        uint256 ratePeriod_,
        uint256 rateLimit_
    ) EIP712("StrideBridge", "1") {
        token = token_;
        mode = mode_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _setValidators(validators_, threshold_);
        _setRateLimit(ratePeriod_, rateLimit_);
    }

    // ---------------------------------------------------------------- outbound

    /// @notice Send `amount` to `recipient` on `dstChainId`. Needs an allowance for this
    /// bridge (lock: transferFrom, burn: burnFrom), so the holder authorises it.
    function bridgeOut(uint256 dstChainId, address recipient, uint256 amount)
        external
        nonReentrant
        whenNotPaused
        returns (uint256 nonce)
    {
        if (amount == 0) revert ZeroAmount();
        if (recipient == address(0)) revert ZeroAddress();
        if (!peerChain[dstChainId]) revert UnknownChain(dstChainId);
        nonce = ++outboundNonce;
        if (mode == Mode.LockRelease) {
            token.safeTransferFrom(msg.sender, address(this), amount);
        } else {
            IMintBurnToken(address(token)).burnFrom(msg.sender, amount);
        }
        emit BridgeOut(nonce, dstChainId, msg.sender, recipient, amount);
    }

    // ---------------------------------------------------------------- inbound

    /// @notice Complete a transfer from another chain. `signatures` are 65-byte EIP-712
    /// signatures over `transfer`, ordered by strictly increasing signer address.
    function bridgeIn(Transfer calldata transfer, bytes[] calldata signatures)
        external
        nonReentrant
        whenNotPaused
    {
        if (!peerChain[transfer.srcChainId]) revert UnknownChain(transfer.srcChainId);
        if (processed[transfer.srcChainId][transfer.nonce]) {
            revert AlreadyProcessed(transfer.srcChainId, transfer.nonce);
        }
        if (transfer.amount == 0) revert ZeroAmount();
        if (transfer.recipient == address(0)) revert ZeroAddress();
        _verify(transferDigest(transfer), signatures);
        processed[transfer.srcChainId][transfer.nonce] = true;
        _consumeRateLimit(transfer.amount);
        if (mode == Mode.LockRelease) {
            token.safeTransfer(transfer.recipient, transfer.amount);
        } else {
            IMintBurnToken(address(token)).mint(transfer.recipient, transfer.amount);
        }
        emit BridgeIn(transfer.srcChainId, transfer.nonce, transfer.recipient, transfer.sender, transfer.amount);
    }

    /// @notice The EIP-712 digest validators sign; the domain binds this chain and contract.
    function transferDigest(Transfer calldata transfer) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    TRANSFER_TYPEHASH,
                    transfer.srcChainId,
                    transfer.nonce,
                    transfer.sender,
                    transfer.recipient,
                    transfer.amount
                )
            )
        );
    }

    function validators() external view returns (address[] memory) {
        return _validators;
    }

    /// @notice Amount that can still be received in the current rate-limit period.
    function availableInPeriod() public view returns (uint256) {
        if (block.timestamp >= periodStart + ratePeriod) return rateLimit;
        return rateLimit > usedInPeriod ? rateLimit - usedInPeriod : 0;
    }

    // ---------------------------------------------------------------- admin

    function setValidators(address[] calldata validators_, uint256 threshold_)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setValidators(validators_, threshold_);
    }

    function setPeerChain(uint256 chainId, bool trusted) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (chainId == block.chainid) revert UnknownChain(chainId);
        peerChain[chainId] = trusted;
        emit PeerChainChanged(chainId, trusted);
    }

    function setRateLimit(uint256 period, uint256 limit) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRateLimit(period, limit);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ---------------------------------------------------------------- internals

    function _verify(bytes32 digest, bytes[] calldata signatures) private view {
        if (signatures.length < threshold) revert NotEnoughSignatures(signatures.length, threshold);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            address signer = ECDSA.recover(digest, signatures[i]);
            if (signer <= previous) revert SignersNotSorted();
            if (!isValidator[signer]) revert NotValidator(signer);
            previous = signer;
        }
    }

    function _consumeRateLimit(uint256 amount) private {
        if (block.timestamp >= periodStart + ratePeriod) {
            periodStart = block.timestamp;
            usedInPeriod = 0;
        }
        uint256 available = availableInPeriod();
        if (amount > available) revert RateLimitExceeded(amount, available);
        usedInPeriod += amount;
    }

    function _setValidators(address[] memory validators_, uint256 threshold_) private {
        uint256 count = validators_.length;
        if (count == 0 || count > MAX_VALIDATORS || threshold_ == 0 || threshold_ > count) {
            revert InvalidValidatorSet();
        }
        for (uint256 i = 0; i < _validators.length; ++i) {
            isValidator[_validators[i]] = false;
        }
        delete _validators;
        for (uint256 i = 0; i < count; ++i) {
            address validator = validators_[i];
            if (validator == address(0) || isValidator[validator]) revert InvalidValidatorSet();
            isValidator[validator] = true;
            _validators.push(validator);
        }
        threshold = threshold_;
        emit ValidatorsChanged(validators_, threshold_);
    }

    function _setRateLimit(uint256 period, uint256 limit) private {
        if (period == 0) revert ZeroAmount();
        ratePeriod = period;
        rateLimit = limit;
        emit RateLimitChanged(period, limit);
    }
}
