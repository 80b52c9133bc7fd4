// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title SampleCollection
/// @notice A collection that is not Stride's, for the indexer's demo and tests: tokenURI is
///         baseURI + id (an ipfs:// or http(s):// prefix given at deployment). Anyone mints.
contract SampleCollection is ERC721 {
    string private baseUri;

    constructor(string memory name_, string memory symbol_, string memory baseUri_)
        ERC721(name_, symbol_)
    {
        baseUri = baseUri_;
    }

    function mint(address to, uint256 tokenId) external {
        _mint(to, tokenId);
    }

    function burn(uint256 tokenId) external {
        _checkAuthorized(_ownerOf(tokenId), msg.sender, tokenId);
        _burn(tokenId);
    }

    function _baseURI() internal view override returns (string memory) {
        return baseUri;
    }
}
