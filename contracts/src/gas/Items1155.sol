// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/// @title Items1155
/// @notice Gas comparison: OpenZeppelin ERC1155 where each item is its own id with supply 1.
contract Items1155 is ERC1155 {
    uint256 public nextId = 1;

    constructor() ERC1155("") {}

    function mint(address to, uint256 quantity) external {
        uint256[] memory ids = new uint256[](quantity);
        uint256[] memory amounts = new uint256[](quantity);
        uint256 id = nextId;
        for (uint256 i = 0; i < quantity; ++i) {
            ids[i] = id + i;
            amounts[i] = 1;
        }
        nextId = id + quantity;
        if (quantity == 1) {
            _mint(to, id, 1, "");
        } else {
            _mintBatch(to, ids, amounts, "");
        }
    }
}
