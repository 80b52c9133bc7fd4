// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title OmnibusVault
/// @notice Staking vault for the game token and allowlisted ERC721 collections. Rewards are
/// paid in the game token, streamed per second (Synthetix StakingRewards pattern) with two
/// fixes: (1) rewards emitted while nothing is staked are not lost, and (2) rounding dust is
/// not stuck. Both follow from one rule: the vault only ever reserves what stakers are owed
/// (rounded up) plus what is still scheduled; every other reward token it holds is
/// "unallocated" and is streamed again by the next `notifyRewardAmount`.
/// Staked NFTs count as a fixed stake weight per collection, fixed at deposit time.
contract OmnibusVault is AccessControl, Pausable, ReentrancyGuard, IERC721Receiver {
    using SafeERC20 for IERC20;

    bytes32 public constant REWARDS_DISTRIBUTOR_ROLE = keccak256("REWARDS_DISTRIBUTOR_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    uint256 private constant PRECISION = 1e18;

    struct NftDeposit {
        address owner;
        uint96 weight;
    }

    IERC20 public immutable stakingToken;

    uint256 public periodFinish;
    /// @notice Reward tokens per second, scaled by 1e18 so the per-second rate keeps its dust.
    uint256 public rewardRateScaled;
    uint256 public lastUpdateTime;
    uint256 public rewardPerTokenStored;

    /// @notice Sum of stake weights (token wei plus NFT weights).
    uint256 public totalStaked;
    /// @notice Game tokens deposited as principal (never used to pay rewards).
    uint256 public totalTokenPrincipal;
    /// @notice Rewards credited to stakers and not yet claimed.
    uint256 public totalUnclaimed;
    /// @dev Sum over stakers of stake * userRewardPerTokenPaid: lets the vault compute what all
    /// stakers are owed without iterating.
    uint256 private _sumStakeTimesPaid;

    mapping(address account => uint256) public stakeOf;
    mapping(address account => uint256) public tokenStakeOf;
    mapping(address account => uint256) public userRewardPerTokenPaid;
    mapping(address account => uint256) public rewards;
    /// @notice Stake weight granted per NFT of an allowlisted collection (0 = not allowed).
    mapping(address collection => uint96) public collectionWeight;
    mapping(address collection => mapping(uint256 tokenId => NftDeposit)) public nftDeposits;

    event Staked(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event NftStaked(address indexed account, address indexed collection, uint256 indexed tokenId, uint256 weight);
    event NftWithdrawn(address indexed account, address indexed collection, uint256 indexed tokenId);
    event RewardPaid(address indexed account, uint256 reward);
    event RewardAdded(uint256 funded, uint256 streamed, uint256 duration, uint256 periodFinish);
    event EmergencyWithdrawn(address indexed account, uint256 amount, uint256 nfts, uint256 forfeited);
    event CollectionWeightSet(address indexed collection, uint96 weight);
    event NftRescued(address indexed collection, uint256 indexed tokenId, address to);

    error ZeroAmount();
    error ZeroDuration();
    error InsufficientStake(uint256 requested, uint256 available);
    error CollectionNotAllowed(address collection);
    error NotDepositOwner(address collection, uint256 tokenId);
    error NftNotReceived(address collection, uint256 tokenId);
    error RewardTooLow();
    error NftIsStaked(address collection, uint256 tokenId);

    constructor(IERC20 stakingToken_, address admin) {
        stakingToken = stakingToken_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REWARDS_DISTRIBUTOR_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    // ---------------------------------------------------------------- views

    function lastTimeRewardApplicable() public view returns (uint256) {
        return Math.min(block.timestamp, periodFinish);
    }

    function rewardPerToken() public view returns (uint256) {
        if (totalStaked == 0) return rewardPerTokenStored;
        uint256 elapsed = lastTimeRewardApplicable() - lastUpdateTime;
        return rewardPerTokenStored + (elapsed * rewardRateScaled) / totalStaked;
    }

    function earned(address account) public view returns (uint256) {
        return rewards[account]
            + (stakeOf[account] * (rewardPerToken() - userRewardPerTokenPaid[account])) / PRECISION;
    }

    /// @notice Upper bound of what stakers can ever claim for time already elapsed.
    function owedRewards() public view returns (uint256) {
        uint256 pending = totalStaked * rewardPerToken() - _sumStakeTimesPaid;
        return totalUnclaimed + Math.ceilDiv(pending, PRECISION);
    }

    /// @notice Rewards still to be streamed in the current period.
    function scheduledRewards() public view returns (uint256) {
        if (block.timestamp >= periodFinish) return 0;
        return Math.ceilDiv((periodFinish - block.timestamp) * rewardRateScaled, PRECISION);
    }

    /// @notice Reward tokens held that nobody is owed and nothing schedules: idle-time
    /// emissions and rounding dust. The next `notifyRewardAmount` streams them again.
    function unallocatedRewards() public view returns (uint256) {
        uint256 reserve = stakingToken.balanceOf(address(this)) - totalTokenPrincipal;
        uint256 committed = owedRewards() + scheduledRewards();
        return reserve > committed ? reserve - committed : 0;
    }

    // ---------------------------------------------------------------- staking

    function stake(uint256 amount) external nonReentrant whenNotPaused {
        if (amount == 0) revert ZeroAmount();
        _updateReward(msg.sender);
        _addStake(msg.sender, amount);
        tokenStakeOf[msg.sender] += amount;
        totalTokenPrincipal += amount;
        stakingToken.safeTransferFrom(msg.sender, address(this), amount);
        emit Staked(msg.sender, amount);
    }

    /// @notice NFT deposits arrive through `safeTransferFrom(owner, vault, tokenId)`.
    function onERC721Received(address, address from, uint256 tokenId, bytes calldata)
        external
        nonReentrant
        whenNotPaused
        returns (bytes4)
    {
        address collection = msg.sender;
        uint96 weight = collectionWeight[collection];
        if (weight == 0) revert CollectionNotAllowed(collection);
        if (IERC721(collection).ownerOf(tokenId) != address(this)) {
            revert NftNotReceived(collection, tokenId);
        }
        _updateReward(from);
        _addStake(from, weight);
        nftDeposits[collection][tokenId] = NftDeposit({owner: from, weight: weight});
        emit NftStaked(from, collection, tokenId, weight);
        return IERC721Receiver.onERC721Received.selector;
    }

    function withdraw(uint256 amount) public nonReentrant {
        _withdrawTokens(amount);
    }

    function withdrawNft(address collection, uint256 tokenId) public nonReentrant {
        _updateReward(msg.sender);
        _releaseNft(collection, tokenId);
    }

    function claim() public nonReentrant whenNotPaused {
        _claim();
    }

    /// @notice Withdraw all staked tokens, the given NFTs, and every pending reward.
    function exit(address[] calldata collections, uint256[] calldata tokenIds)
        external
        nonReentrant
        whenNotPaused
    {
        _updateReward(msg.sender);
        uint256 amount = tokenStakeOf[msg.sender];
        if (amount > 0) _withdrawTokens(amount);
        for (uint256 i = 0; i < collections.length; ++i) {
            _releaseNft(collections[i], tokenIds[i]);
        }
        _claim();
    }

    /// @notice Leave without touching the reward logic: return principal and the given NFTs,
    /// forfeit pending rewards (they become unallocated). Works while paused.
    function emergencyWithdraw(address[] calldata collections, uint256[] calldata tokenIds)
        external
        nonReentrant
    {
        _updateReward(msg.sender);
        uint256 forfeited = rewards[msg.sender];
        rewards[msg.sender] = 0;
        totalUnclaimed -= forfeited;
        uint256 amount = tokenStakeOf[msg.sender];
        if (amount > 0) {
            _removeStake(msg.sender, amount);
            tokenStakeOf[msg.sender] = 0;
            totalTokenPrincipal -= amount;
        }
        for (uint256 i = 0; i < collections.length; ++i) {
            _releaseNft(collections[i], tokenIds[i]);
        }
        if (amount > 0) stakingToken.safeTransfer(msg.sender, amount);
        emit EmergencyWithdrawn(msg.sender, amount, collections.length, forfeited);
    }

    // ---------------------------------------------------------------- admin

    /// @notice Pull `amount` from the caller and stream it, together with everything
    /// unallocated and still scheduled, over the next `duration` seconds.
    function notifyRewardAmount(uint256 amount, uint256 duration)
        external
        nonReentrant
        onlyRole(REWARDS_DISTRIBUTOR_ROLE)
    {
        if (duration == 0) revert ZeroDuration();
        _updateReward(address(0));
        if (amount > 0) stakingToken.safeTransferFrom(msg.sender, address(this), amount);
        uint256 reserve = stakingToken.balanceOf(address(this)) - totalTokenPrincipal;
        uint256 owed = owedRewards();
        uint256 streamable = reserve > owed ? reserve - owed : 0;
        uint256 rate = (streamable * PRECISION) / duration;
        if (rate == 0) revert RewardTooLow();
        rewardRateScaled = rate;
        lastUpdateTime = block.timestamp;
        periodFinish = block.timestamp + duration;
        emit RewardAdded(amount, streamable, duration, periodFinish);
    }

    function setCollectionWeight(address collection, uint96 weight)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        collectionWeight[collection] = weight;
        emit CollectionWeightSet(collection, weight);
    }

    /// @notice Return an NFT that reached the vault without a deposit (a plain `transferFrom`
    /// skips `onERC721Received`); staked NFTs can never be moved this way.
    function rescueNft(address collection, uint256 tokenId, address to)
        external
        nonReentrant
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (nftDeposits[collection][tokenId].owner != address(0)) revert NftIsStaked(collection, tokenId);
        IERC721(collection).safeTransferFrom(address(this), to, tokenId);
        emit NftRescued(collection, tokenId, to);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ---------------------------------------------------------------- internals

    function _updateReward(address account) private {
        uint256 rpt = rewardPerToken();
        rewardPerTokenStored = rpt;
        lastUpdateTime = lastTimeRewardApplicable();
        if (account != address(0)) {
            uint256 userStake = stakeOf[account];
            uint256 delta = rpt - userRewardPerTokenPaid[account];
            uint256 accrued = (userStake * delta) / PRECISION;
            rewards[account] += accrued;
            totalUnclaimed += accrued;
            _sumStakeTimesPaid += userStake * delta;
            userRewardPerTokenPaid[account] = rpt;
        }
    }

    function _addStake(address account, uint256 weight) private {
        stakeOf[account] += weight;
        totalStaked += weight;
        _sumStakeTimesPaid += weight * userRewardPerTokenPaid[account];
    }

    function _removeStake(address account, uint256 weight) private {
        stakeOf[account] -= weight;
        totalStaked -= weight;
        _sumStakeTimesPaid -= weight * userRewardPerTokenPaid[account];
    }

    function _withdrawTokens(uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        uint256 available = tokenStakeOf[msg.sender];
        if (amount > available) revert InsufficientStake(amount, available);
        _updateReward(msg.sender);
        _removeStake(msg.sender, amount);
        tokenStakeOf[msg.sender] = available - amount;
        totalTokenPrincipal -= amount;
        stakingToken.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    /// @dev Caller must have run `_updateReward(msg.sender)`.
    function _releaseNft(address collection, uint256 tokenId) private {
        NftDeposit memory deposit = nftDeposits[collection][tokenId];
        if (deposit.owner != msg.sender) revert NotDepositOwner(collection, tokenId);
        delete nftDeposits[collection][tokenId];
        _removeStake(msg.sender, deposit.weight);
        IERC721(collection).safeTransferFrom(address(this), msg.sender, tokenId);
        emit NftWithdrawn(msg.sender, collection, tokenId);
    }

    function _claim() private {
        _updateReward(msg.sender);
        uint256 reward = rewards[msg.sender];
        if (reward > 0) {
            rewards[msg.sender] = 0;
            totalUnclaimed -= reward;
            stakingToken.safeTransfer(msg.sender, reward);
            emit RewardPaid(msg.sender, reward);
        }
    }
}
