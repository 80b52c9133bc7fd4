// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC2981} from "@openzeppelin/contracts/interfaces/IERC2981.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {ERC165Checker} from "@openzeppelin/contracts/utils/introspection/ERC165Checker.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title StrideMarketplace
/// @notice Non-custodial ERC721 market: fixed-price listings in the game token or the native
/// coin, token offers, and atomic swaps (NFT for NFT and/or tokens). NFTs stay with their
/// owner until the trade settles (the market only holds an operator approval); token legs
/// move straight from payer to seller, treasury and royalty receiver in the same
/// transaction. The only value it ever touches is the native coin of a `buy`, forwarded
/// within that call.
contract StrideMarketplace is AccessControl, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    uint16 public constant MAX_FEE_BPS = 1_000;
    uint16 private constant BPS = 10_000;
    address public constant NATIVE = address(0);

    struct Listing {
        address seller;
        uint64 expiry;
        bool active;
        address collection;
        address currency;
        uint256 tokenId;
        uint256 price;
    }

    struct Offer {
        address buyer;
        uint64 expiry;
        bool active;
        address collection;
        uint256 tokenId;
        uint256 amount;
    }

    /// @dev The maker always gives an NFT; the taker gives an NFT, tokens, or both; either
    /// side may add game tokens on top.
    struct Swap {
        address maker;
        uint64 expiry;
        bool active;
        address taker;
        address makerCollection;
        uint256 makerTokenId;
        uint256 makerAmount;
        address takerCollection;
        uint256 takerTokenId;
        uint256 takerAmount;
    }

    IERC20 public immutable paymentToken;
    address public treasury;
    uint16 public feeBps;

    uint256 public listingCount;
    uint256 public offerCount;
    uint256 public swapCount;
    mapping(uint256 id => Listing) public listings;
    mapping(uint256 id => Offer) public offers;
    mapping(uint256 id => Swap) public swaps;

    event Listed(
        uint256 indexed listingId,
        address indexed seller,
        address indexed collection,
        uint256 tokenId,
        address currency,
        uint256 price,
        uint64 expiry
    );
    event ListingCancelled(uint256 indexed listingId);
    event Sale(uint256 indexed listingId, address indexed buyer, uint256 price, uint256 fee, uint256 royalty);
    event OfferMade(
        uint256 indexed offerId,
        address indexed buyer,
        address indexed collection,
        uint256 tokenId,
        uint256 amount,
        uint64 expiry
    );
    event OfferCancelled(uint256 indexed offerId);
    event OfferAccepted(uint256 indexed offerId, address indexed seller, uint256 fee, uint256 royalty);
    event SwapProposed(uint256 indexed swapId, address indexed maker, address indexed taker);
    event SwapCancelled(uint256 indexed swapId);
    event SwapExecuted(uint256 indexed swapId, address indexed taker);
    event FeeChanged(uint16 feeBps);
    event TreasuryChanged(address treasury);

    error FeeTooHigh(uint16 feeBps);
    error ZeroAddress();
    error ZeroPrice();
    error UnsupportedCurrency(address currency);
    error NotTokenOwner(address collection, uint256 tokenId);
    error MarketNotApproved(address collection, uint256 tokenId);
    error NotActive();
    error Expired();
    error NotAuthorized();
    error WrongPayment(uint256 sent, uint256 expected);
    error NativeTransferFailed(address to);
    error InvalidSwap();
    error InsufficientAllowance(uint256 allowance, uint256 needed);

    constructor(IERC20 paymentToken_, address admin, address treasury_, uint16 feeBps_) {
        if (treasury_ == address(0)) revert ZeroAddress();
        if (feeBps_ > MAX_FEE_BPS) revert FeeTooHigh(feeBps_);
        paymentToken = paymentToken_;
        treasury = treasury_;
        feeBps = feeBps_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    // ---------------------------------------------------------------- listings

    /// @notice List `tokenId` for `price` in `currency` (the game token or NATIVE).
    function list(address collection, uint256 tokenId, address currency, uint256 price, uint64 expiry)
        external
        whenNotPaused
        returns (uint256 listingId)
    {
        if (price == 0) revert ZeroPrice();
        if (currency != NATIVE && currency != address(paymentToken)) {
            revert UnsupportedCurrency(currency);
        }
        if (expiry <= block.timestamp) revert Expired();
        _requireSellable(msg.sender, collection, tokenId);
        listingId = ++listingCount;
        listings[listingId] = Listing({
            seller: msg.sender,
            expiry: expiry,
            active: true,
            collection: collection,
            currency: currency,
            tokenId: tokenId,
            price: price
        });
        emit Listed(listingId, msg.sender, collection, tokenId, currency, price, expiry);
    }

    function cancelListing(uint256 listingId) external {
        Listing storage listing = listings[listingId];
        if (!listing.active) revert NotActive();
        if (listing.seller != msg.sender) revert NotAuthorized();
        listing.active = false;
        emit ListingCancelled(listingId);
    }

    function buy(uint256 listingId) external payable nonReentrant whenNotPaused {
        Listing storage listing = listings[listingId];
        if (!listing.active) revert NotActive();
        if (listing.expiry <= block.timestamp) revert Expired();
        listing.active = false;
        address seller = listing.seller;
        address collection = listing.collection;
        uint256 tokenId = listing.tokenId;
        uint256 price = listing.price;
        if (listing.currency != NATIVE && msg.value != 0) revert WrongPayment(msg.value, 0);
        _requireSellable(seller, collection, tokenId);
        (uint256 fee, uint256 royalty) = listing.currency == NATIVE
            ? _settleNative(seller, collection, tokenId, price)
            : _settleToken(msg.sender, seller, collection, tokenId, price);
        IERC721(collection).safeTransferFrom(seller, msg.sender, tokenId);
        emit Sale(listingId, msg.sender, price, fee, royalty);
    }

    // ---------------------------------------------------------------- offers

    /// @notice Offer `amount` game tokens for `tokenId`. Tokens stay with the buyer (who
    /// must keep an allowance for the market) until the owner accepts.
    function makeOffer(address collection, uint256 tokenId, uint256 amount, uint64 expiry)
        external
        whenNotPaused
        returns (uint256 offerId)
    {
        if (amount == 0) revert ZeroPrice();
        if (expiry <= block.timestamp) revert Expired();
        uint256 allowance = paymentToken.allowance(msg.sender, address(this));
        if (allowance < amount) revert InsufficientAllowance(allowance, amount);
        offerId = ++offerCount;
        offers[offerId] = Offer({
            buyer: msg.sender,
            expiry: expiry,
            active: true,
            collection: collection,
            tokenId: tokenId,
            amount: amount
        });
        emit OfferMade(offerId, msg.sender, collection, tokenId, amount, expiry);
    }

    function cancelOffer(uint256 offerId) external {
        Offer storage offer = offers[offerId];
        if (!offer.active) revert NotActive();
        if (offer.buyer != msg.sender) revert NotAuthorized();
        offer.active = false;
        emit OfferCancelled(offerId);
    }

    /// @notice The current owner of the NFT sells it to the offer's buyer.
    function acceptOffer(uint256 offerId) external nonReentrant whenNotPaused {
        Offer storage offer = offers[offerId];
        if (!offer.active) revert NotActive();
        if (offer.expiry <= block.timestamp) revert Expired();
        offer.active = false;
        address collection = offer.collection;
        uint256 tokenId = offer.tokenId;
        _requireSellable(msg.sender, collection, tokenId);
        (uint256 fee, uint256 royalty) =
            _settleToken(offer.buyer, msg.sender, collection, tokenId, offer.amount);
        IERC721(collection).safeTransferFrom(msg.sender, offer.buyer, tokenId);
        emit OfferAccepted(offerId, msg.sender, fee, royalty);
    }

    // ---------------------------------------------------------------- swaps

    /// @notice Propose giving (makerCollection, makerTokenId) plus `makerAmount` tokens for
    /// (takerCollection, takerTokenId) and/or `takerAmount` tokens. `taker` zero = anyone.
    function proposeSwap(Swap calldata terms) external whenNotPaused returns (uint256 swapId) {
        if (terms.makerCollection == address(0)) revert InvalidSwap();
        if (terms.takerCollection == address(0) && terms.takerAmount == 0) revert InvalidSwap();
        if (terms.expiry <= block.timestamp) revert Expired();
        _requireSellable(msg.sender, terms.makerCollection, terms.makerTokenId);
        swapId = ++swapCount;
        Swap storage swap = swaps[swapId];
        swap.maker = msg.sender;
        swap.expiry = terms.expiry;
        swap.active = true;
        swap.taker = terms.taker;
        swap.makerCollection = terms.makerCollection;
        swap.makerTokenId = terms.makerTokenId;
        swap.makerAmount = terms.makerAmount;
        swap.takerCollection = terms.takerCollection;
        swap.takerTokenId = terms.takerTokenId;
        swap.takerAmount = terms.takerAmount;
        emit SwapProposed(swapId, msg.sender, terms.taker);
    }

    function cancelSwap(uint256 swapId) external {
        Swap storage swap = swaps[swapId];
        if (!swap.active) revert NotActive();
        if (swap.maker != msg.sender) revert NotAuthorized();
        swap.active = false;
        emit SwapCancelled(swapId);
    }

    /// @notice Execute a swap: every leg settles in this transaction or none does. Token legs
    /// pay the protocol fee and the royalty of the NFT received in exchange.
    function acceptSwap(uint256 swapId) external nonReentrant whenNotPaused {
        Swap memory swap = swaps[swapId];
        if (!swap.active) revert NotActive();
        if (swap.expiry <= block.timestamp) revert Expired();
        if (swap.taker != address(0) && swap.taker != msg.sender) revert NotAuthorized();
        swaps[swapId].active = false;
        _requireSellable(swap.maker, swap.makerCollection, swap.makerTokenId);
        bool takerGivesNft = swap.takerCollection != address(0);
        if (takerGivesNft) _requireSellable(msg.sender, swap.takerCollection, swap.takerTokenId);
        if (swap.takerAmount > 0) {
            _settleToken(msg.sender, swap.maker, swap.makerCollection, swap.makerTokenId, swap.takerAmount);
        }
        if (swap.makerAmount > 0) {
            _settleToken(swap.maker, msg.sender, swap.takerCollection, swap.takerTokenId, swap.makerAmount);
        }
        IERC721(swap.makerCollection).safeTransferFrom(swap.maker, msg.sender, swap.makerTokenId);
        if (takerGivesNft) {
            IERC721(swap.takerCollection).safeTransferFrom(msg.sender, swap.maker, swap.takerTokenId);
        }
        emit SwapExecuted(swapId, msg.sender);
    }

    // ---------------------------------------------------------------- admin

    function setFee(uint16 newFeeBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newFeeBps > MAX_FEE_BPS) revert FeeTooHigh(newFeeBps);
        feeBps = newFeeBps;
        emit FeeChanged(newFeeBps);
    }

    function setTreasury(address newTreasury) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newTreasury == address(0)) revert ZeroAddress();
        treasury = newTreasury;
        emit TreasuryChanged(newTreasury);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @notice Split of `price`: protocol fee, royalty (capped so the seller never goes
    /// negative) and receiver of the royalty.
    function quote(address collection, uint256 tokenId, uint256 price)
        public
        view
        returns (uint256 fee, uint256 royalty, address royaltyReceiver)
    {
        fee = (price * feeBps) / BPS;
        if (collection != address(0)
            && ERC165Checker.supportsInterface(collection, type(IERC2981).interfaceId)) {
            (royaltyReceiver, royalty) = IERC2981(collection).royaltyInfo(tokenId, price);
            if (royaltyReceiver == address(0)) royalty = 0;
            if (royalty > price - fee) royalty = price - fee;
        }
    }

    // ---------------------------------------------------------------- internals

    function _requireSellable(address owner, address collection, uint256 tokenId) private view {
        IERC721 nft = IERC721(collection);
        if (nft.ownerOf(tokenId) != owner) revert NotTokenOwner(collection, tokenId);
        if (!nft.isApprovedForAll(owner, address(this)) && nft.getApproved(tokenId) != address(this)) {
            revert MarketNotApproved(collection, tokenId);
        }
    }

    function _settleToken(address payer, address payee, address collection, uint256 tokenId, uint256 amount)
        private
        returns (uint256 fee, uint256 royalty)
    {
        address royaltyReceiver;
        (fee, royalty, royaltyReceiver) = quote(collection, tokenId, amount);
        if (fee > 0) paymentToken.safeTransferFrom(payer, treasury, fee);
        if (royalty > 0) paymentToken.safeTransferFrom(payer, royaltyReceiver, royalty);
        paymentToken.safeTransferFrom(payer, payee, amount - fee - royalty);
    }

    function _settleNative(address seller, address collection, uint256 tokenId, uint256 price)
        private
        returns (uint256 fee, uint256 royalty)
    {
        if (msg.value != price) revert WrongPayment(msg.value, price);
        address royaltyReceiver;
        (fee, royalty, royaltyReceiver) = quote(collection, tokenId, price);
        if (fee > 0) _sendNative(treasury, fee);
        if (royalty > 0) _sendNative(royaltyReceiver, royalty);
        _sendNative(seller, price - fee - royalty);
    }

    function _sendNative(address to, uint256 amount) private {
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert NativeTransferFailed(to);
    }
}
