// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/// @title SampleMultiToken
/// @notice An ERC-1155 that is not Stride's, for the indexer's demo and tests: uri(id) is
///         the template given at deployment (with the standard {id} placeholder). Anyone mints.
contract SampleMultiToken is ERC1155 {
    constructor(string memory uriTemplate) ERC1155(uriTemplate) {}

    function mint(address to, uint256 id, uint256 amount) external {
        _mint(to, id, amount, "");
    }

    function mintBatch(address to, uint256[] calldata ids, uint256[] calldata amounts) external {
        _mintBatch(to, ids, amounts, "");
    }
}
