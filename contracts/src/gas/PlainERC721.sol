// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title PlainERC721
/// @notice Gas baseline: OpenZeppelin ERC721 with sequential ids and no metadata storage.
contract PlainERC721 is ERC721 {
    uint256 public nextTokenId = 1;

    constructor() ERC721("Plain", "PLAIN") {}

    function mint(address to, uint256 quantity) external {
        uint256 id = nextTokenId;
        for (uint256 i = 0; i < quantity; ++i) {
            _mint(to, id + i);
        }
        nextTokenId = id + quantity;
    }
}
