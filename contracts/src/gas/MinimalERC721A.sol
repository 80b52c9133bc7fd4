// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title MinimalERC721A
/// @notice Gas comparison only: the ERC721A idea (Azuki) reduced to its core. A batch mint
/// writes one ownership slot for the whole run of ids; `ownerOf` scans back to the nearest
/// written slot, and a transfer initialises the next slot so the run stays intact.
/// Not a full ERC721 (no safe transfers, no ERC165): it exists to be measured.
contract MinimalERC721A {
    struct Ownership {
        address owner;
        uint64 startTimestamp;
    }

    uint256 public nextTokenId = 1;
    mapping(uint256 tokenId => Ownership) private _ownerships;
    mapping(address owner => uint256) public balanceOf;
    mapping(uint256 tokenId => address) public getApproved;
    mapping(address owner => mapping(address operator => bool)) public isApprovedForAll;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);

    error NonexistentToken(uint256 tokenId);
    error NotAuthorized();
    error WrongFrom();

    function mint(address to, uint256 quantity) external {
        uint256 start = nextTokenId;
        _ownerships[start] = Ownership({owner: to, startTimestamp: uint64(block.timestamp)});
        balanceOf[to] += quantity;
        for (uint256 i = 0; i < quantity; ++i) {
            emit Transfer(address(0), to, start + i);
        }
        nextTokenId = start + quantity;
    }

    function ownerOf(uint256 tokenId) public view returns (address) {
        if (tokenId == 0 || tokenId >= nextTokenId) revert NonexistentToken(tokenId);
        uint256 id = tokenId;
        address owner = _ownerships[id].owner;
        while (owner == address(0)) {
            owner = _ownerships[--id].owner;
        }
        return owner;
    }

    function approve(address to, uint256 tokenId) external {
        if (msg.sender != ownerOf(tokenId)) revert NotAuthorized();
        getApproved[tokenId] = to;
        emit Approval(msg.sender, to, tokenId);
    }

    function setApprovalForAll(address operator, bool approved) external {
        isApprovedForAll[msg.sender][operator] = approved;
    }

    function transferFrom(address from, address to, uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        if (owner != from) revert WrongFrom();
        if (msg.sender != owner && !isApprovedForAll[owner][msg.sender] && getApproved[tokenId] != msg.sender) {
            revert NotAuthorized();
        }
        delete getApproved[tokenId];
        --balanceOf[from];
        ++balanceOf[to];
        _ownerships[tokenId] = Ownership({owner: to, startTimestamp: uint64(block.timestamp)});
        uint256 next = tokenId + 1;
        if (next < nextTokenId && _ownerships[next].owner == address(0)) {
            _ownerships[next] = Ownership({owner: from, startTimestamp: uint64(block.timestamp)});
        }
        emit Transfer(from, to, tokenId);
    }
}
