"""The reorg rules and the projection fold, pure."""

import random

from core.chain.contracts import ChainLog, TokenMove
from core.chain.projections import balances_of, fold
from core.chain.reorg import BlockRef, common_ancestor, first_break, next_range

A, B, C = ("0x" + c * 40 for c in "abc")
ZERO = "0x" + "0" * 40


def chain(start: int, count: int, fork: str = "a", parent: str | None = None) -> list[BlockRef]:
    blocks = []
    previous = parent or f"0x{fork}{start - 1:063x}"
    for number in range(start, start + count):
        digest = f"0x{fork}{number:063x}"
        blocks.append(BlockRef(number, digest, previous, number * 12))
        previous = digest
    return blocks


def test_first_break_finds_the_header_that_does_not_extend_its_parent() -> None:
    blocks = chain(10, 5)
    assert first_break(None, blocks) is None
    assert first_break(blocks[0], blocks[1:]) is None
    other = chain(12, 3, fork="b")
    assert first_break(blocks[1], other) == 0
    assert first_break(None, [*blocks[:2], *other]) == 2
    assert first_break(blocks[0], blocks[2:]) == 0  # a gap is a break too


def test_common_ancestor_is_the_highest_block_the_node_still_has() -> None:
    window = chain(10, 6)
    canonical = {b.number: b.hash for b in window[:3]} | {
        b.number: b.hash for b in chain(13, 3, "b")
    }
    assert common_ancestor(window, canonical) == 12
    assert common_ancestor(window, {b.number: b.hash for b in chain(10, 6, "b")}) is None


def test_next_range_stays_behind_the_head_by_the_confirmations() -> None:
    assert next_range(None, 100, confirmations=0, batch_blocks=50, start_block=0) == (0, 49)
    assert next_range(49, 100, confirmations=5, batch_blocks=500, start_block=0) == (50, 95)
    assert next_range(95, 100, confirmations=5, batch_blocks=500, start_block=0) is None
    assert next_range(None, 3, confirmations=0, batch_blocks=10, start_block=7) is None


def transfer(n: int, sender: str, recipient: str, amount: int, block: str = "1") -> ChainLog:
    return ChainLog(
        chain_id=1,
        block_number=n,
        block_hash="0x" + block * 64,
        block_timestamp=0,
        tx_hash="0x" + "f" * 64,
        log_index=n,
        contract=C,
        event="Transfer",
        standard="erc20",
        moves=[TokenMove(sender=sender, recipient=recipient, amount=str(amount))],
    )


def test_fold_applies_each_log_once_and_retractions_take_it_back() -> None:
    mint, pay = transfer(0, ZERO, A, 100), transfer(1, A, B, 30)
    deltas = fold({}, [mint, pay, pay, mint])  # duplicates change nothing
    assert dict(deltas.tokens) == {(1, C, A): 70, (1, C, B): 30}  # the zero address: none
    assert deltas.applied == 2 and deltas.ignored == 2
    known = {mint.log_id: True, pay.log_id: True}
    undone = fold(known, [pay.retraction(), pay.retraction()])
    assert {k: v for k, v in undone.tokens.items() if v} == {(1, C, A): 30, (1, C, B): -30}
    assert undone.canonical == {pay.log_id: False}
    # A block that becomes canonical again brings its log back.
    again = fold({pay.log_id: False}, [pay])
    assert again.canonical == {pay.log_id: True} and again.applied == 1


def test_a_retraction_before_its_log_leaves_a_tombstone() -> None:
    pay = transfer(1, A, B, 30)
    deltas = fold({}, [pay.retraction()])
    assert not any(deltas.tokens.values()) and deltas.canonical == {pay.log_id: False}


def test_incremental_fold_equals_the_from_scratch_balances_for_random_histories() -> None:
    rng = random.Random(7)
    for _ in range(200):
        logs = [
            transfer(
                i, rng.choice([ZERO, A, B]), rng.choice([A, B]), rng.randint(1, 9), rng.choice("12")
            )
            for i in range(rng.randint(1, 12))
        ]
        messages, canonical = [], set()
        for record in logs:  # each log's own messages stay in order (one partition)
            messages.append(record)
            canonical.add(record.log_id)
            if rng.random() < 0.4:
                messages.append(record.retraction())
                canonical.discard(record.log_id)
                if rng.random() < 0.3:
                    messages.append(record)
                    canonical.add(record.log_id)
        cut = rng.randint(0, len(messages))
        replayed = messages + messages[cut:]  # a crash replays a suffix
        deltas = fold({}, replayed)
        expected, _ = balances_of(r for r in logs if r.log_id in canonical)
        assert {k: v for k, v in deltas.tokens.items() if v} == expected
