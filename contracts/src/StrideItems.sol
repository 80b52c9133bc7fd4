// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/// @title StrideItems
/// @notice Game items (ERC721). Each token stores its name, image and traits on chain;
/// `tokenURI` serves them as a `data:application/json;base64` document until an admin
/// switches to an off-chain base URI. ERC2981 royalties (collection default, per-token
/// override).
contract StrideItems is ERC721, ERC2981, AccessControl {
    using Strings for string;
    using Strings for uint256;

    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    uint256 public constant MAX_TRAITS = 16;

    struct Trait {
        string traitType;
        string value;
    }

    struct ItemData {
        string name;
        string image;
        Trait[] traits;
    }

    uint256 public nextTokenId = 1;
    string public baseURI;
    mapping(uint256 tokenId => ItemData) private _items;

    event ItemMinted(address indexed to, uint256 indexed tokenId, string name);
    event BaseURIChanged(string baseURI);
    event MetadataUpdate(uint256 tokenId);
    event BatchMetadataUpdate(uint256 fromTokenId, uint256 toTokenId);

    error TooManyTraits(uint256 count);

    constructor(address admin, address royaltyReceiver, uint96 royaltyBps)
        ERC721("Stride Items", "STRIDEITEM")
    {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setDefaultRoyalty(royaltyReceiver, royaltyBps);
    }

    /// @notice Mint one item with its on-chain metadata; returns the new token id.
    function mint(address to, string calldata name_, string calldata image, Trait[] calldata traits)
        external
        onlyRole(MINTER_ROLE)
        returns (uint256 tokenId)
    {
        if (traits.length > MAX_TRAITS) revert TooManyTraits(traits.length);
        tokenId = nextTokenId;
        ++nextTokenId;
        ItemData storage item = _items[tokenId];
        item.name = name_;
        item.image = image;
        for (uint256 i = 0; i < traits.length; ++i) {
            item.traits.push(traits[i]);
        }
        _safeMint(to, tokenId);
        emit ItemMinted(to, tokenId, name_);
    }

    /// @notice Read back the stored metadata of `tokenId`.
    function itemData(uint256 tokenId) external view returns (ItemData memory) {
        _requireOwned(tokenId);
        return _items[tokenId];
    }

    /// @notice Serve metadata from `newBaseURI` + tokenId; an empty string switches back to
    /// on-chain JSON.
    function setBaseURI(string calldata newBaseURI) external onlyRole(DEFAULT_ADMIN_ROLE) {
        baseURI = newBaseURI;
        emit BaseURIChanged(newBaseURI);
        emit BatchMetadataUpdate(1, type(uint256).max);
    }

    function setDefaultRoyalty(address receiver, uint96 feeBps)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setDefaultRoyalty(receiver, feeBps);
    }

    function setTokenRoyalty(uint256 tokenId, address receiver, uint96 feeBps)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _requireOwned(tokenId);
        _setTokenRoyalty(tokenId, receiver, feeBps);
        emit MetadataUpdate(tokenId);
    }

    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        if (bytes(baseURI).length > 0) {
            return string.concat(baseURI, tokenId.toString());
        }
        return string.concat("data:application/json;base64,", Base64.encode(bytes(_json(tokenId))));
    }

    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, ERC2981, AccessControl)
        returns (bool)
    {
        // 0x49064906: ERC-4906 metadata update events.
        return interfaceId == bytes4(0x49064906) || super.supportsInterface(interfaceId);
    }

    function _json(uint256 tokenId) private view returns (string memory) {
        ItemData storage item = _items[tokenId];
        string memory attributes;
        for (uint256 i = 0; i < item.traits.length; ++i) {
            attributes = string.concat(
                attributes,
                i == 0 ? "" : ",",
                "{\"trait_type\":\"",
                item.traits[i].traitType.escapeJSON(),
                "\",\"value\":\"",
                item.traits[i].value.escapeJSON(),
                "\"}"
            );
        }
        return string.concat(
            "{\"name\":\"",
            item.name.escapeJSON(),
            "\",\"image\":\"",
            item.image.escapeJSON(),
            "\",\"attributes\":[",
            attributes,
            "]}"
        );
    }
}
