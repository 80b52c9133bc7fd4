"""The indexer's reorg rules, pure: is a run of block headers a continuation of the stored
chain, where do the stored chain and the node's chain meet again, which range comes next.

The indexer keeps ``(number, hash, parent_hash)`` of the unfinalized window. Every new
header's parent must be the previous one's hash (the stored tip for the first); when the
node's block at the tip's height has another hash, the chains forked: the common ancestor is
the highest stored block whose hash the node still has at that height. If none of the
window's blocks is still canonical the fork is deeper than the window, and nothing the
indexer kept can say which of its published logs are orphaned: it stops
(:class:`ReorgTooDeep`) rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BlockRef:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


class ReorgTooDeep(RuntimeError):
    """The node's chain forked below the oldest block the indexer kept."""


def first_break(tip: BlockRef | None, headers: Sequence[BlockRef]) -> int | None:
    """Index of the first header that does not extend its predecessor (the stored ``tip``
    for the first one); None when the run is one continuous chain."""
    previous = tip
    for index, header in enumerate(headers):
        if previous is not None and (
            header.number != previous.number + 1 or header.parent_hash != previous.hash
        ):
            return index
        previous = header
    return None


def common_ancestor(window: Sequence[BlockRef], canonical: Mapping[int, str]) -> int | None:
    """The highest block of ``window`` whose hash is the node's at its height
    (``canonical``: number -> the node's hash, for the numbers asked so far)."""
    for block in sorted(window, key=lambda b: b.number, reverse=True):
        if canonical.get(block.number) == block.hash:
            return block.number
    return None


def next_range(
    indexed: int | None, head: int, *, confirmations: int, batch_blocks: int, start_block: int
) -> tuple[int, int] | None:
    """The next blocks to index, ``(first, last)`` inclusive, or None when caught up with
    ``head - confirmations``."""
    first = start_block if indexed is None else indexed + 1
    last = min(head - confirmations, first + batch_blocks - 1)
    return (first, last) if last >= first else None
