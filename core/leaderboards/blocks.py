"""Rank blocks: a player's rank as a small sum instead of a long count.

``leaderboard_records`` is indexed in best-first order, so a page of the top is a keyset
range scan (``core.leaderboards.reads``). A player's rank is ``1 + (records before them)``;
instead of counting up to a million index entries, ``leaderboard_rank_blocks`` splits each
period's order into blocks of about ``BLOCK_SIZE`` records whose sizes the writer keeps
exact, and a rank is the sum of the sizes of earlier blocks plus a count inside one block
(docs/leaderboards.md). Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from core.leaderboards.models import leaderboards_table, rank_blocks_table, records_table
from core.platform.db import json_rows

BLOCK_SIZE = 1000
# A block is split once it holds more than this many records.
BLOCK_SPLIT_AT = 2 * BLOCK_SIZE
# Lower bound of the first block of a period: sorts before every record.
FIRST_BLOCK_LOWER = (-(2**63), datetime(1, 1, 1, tzinfo=UTC), "")

RankTuple = tuple[int, datetime, str]  # sort_key, reached_at, owner_id

_blocks = rank_blocks_table.c
_INSERT_BLOCK = insert(rank_blocks_table)
_OPEN_FIRST_BLOCK = pg_insert(rank_blocks_table).on_conflict_do_nothing()


def _open_first_blocks(conn: Connection, periods: list[tuple[str, datetime]]) -> None:
    """Give each new (leaderboard, period start) its first block, empty, before every record."""
    conn.execute(
        _OPEN_FIRST_BLOCK, [_block_row(lb, start, FIRST_BLOCK_LOWER, 0) for lb, start in periods]
    )


def _block_row(
    leaderboard_id: str, period_start: datetime, lower: tuple[Any, ...], size: int
) -> dict[str, Any]:
    return {
        "leaderboard_id": leaderboard_id,
        "period_start": period_start,
        "lower_sort_key": lower[0],
        "lower_reached_at": lower[1],
        "lower_owner_id": lower[2],
        "size": size,
    }


def _blocks_of(conn: Connection, lookups: list[tuple[str, datetime, RankTuple]]) -> list[int]:
    """The id of the block holding each (leaderboard, period, rank tuple)."""
    # Raw SQL for the writer's hot path: every lookup of the batch in one JSON parameter, each
    # a backward probe of the blocks' unique index (the bound compared as the index sorts it).
    rows = conn.execute(
        text(
            "SELECT k.i, b.id FROM jsonb_to_recordset(CAST(:rows AS jsonb))"
            " AS k(i integer, lb text, ps timestamptz, skey bigint, reached timestamptz,"
            " owner text)"
            " CROSS JOIN LATERAL (SELECT id FROM leaderboard_rank_blocks b"
            "  WHERE b.leaderboard_id = k.lb AND b.period_start = k.ps"
            "  AND (b.lower_sort_key, b.lower_reached_at, b.lower_owner_id)"
            '   <= (k.skey, k.reached, k.owner COLLATE "C")'
            "  ORDER BY b.lower_sort_key DESC, b.lower_reached_at DESC, b.lower_owner_id DESC"
            "  LIMIT 1) AS b ORDER BY k.i"
        ),
        json_rows(
            {"i": i, "lb": lb, "ps": ps, "skey": key[0], "reached": key[1], "owner": key[2]}
            for i, (lb, ps, key) in enumerate(lookups)
        ),
    )
    return list(rows.scalars(1).all())


def _move_counts(
    conn: Connection, lookups: list[tuple[str, datetime, RankTuple]], signs: list[int]
) -> None:
    """Add each sign (+1 entered, -1 left) to the block holding its rank tuple; split big ones."""
    if not lookups:
        return
    deltas: dict[int, int] = defaultdict(int)
    for block_id, sign in zip(_blocks_of(conn, lookups), signs, strict=True):
        deltas[block_id] += sign
    moved = sorted((block, delta) for block, delta in deltas.items() if delta)
    if not moved:
        return
    # Raw SQL for the writer's hot path: one UPDATE for every block the batch touched, the ids
    # and deltas as two arrays (two parameters whatever their length).
    oversized = conn.execute(
        text(
            "UPDATE leaderboard_rank_blocks b SET size = b.size + d.delta"
            " FROM unnest(CAST(:blocks AS bigint[]), CAST(:deltas AS integer[])) AS d(id, delta)"
            " WHERE b.id = d.id RETURNING b.id, b.size"
        ),
        {"blocks": [b for b, _ in moved], "deltas": [d for _, d in moved]},
    )
    for block_id in sorted(row.id for row in oversized if row.size > BLOCK_SPLIT_AT):
        _split_block(conn, block_id)


def _split_block(conn: Connection, block_id: int) -> None:
    """Cut one block into runs of ``BLOCK_SIZE`` records (the first keeps the block's id)."""
    block = conn.execute(select(rank_blocks_table).where(_blocks.id == block_id)).one()
    # Raw SQL: the bounds are row comparisons written as the best-first index orders them
    # (owner ids in "C" collation), so PostgreSQL scans one index range.
    rows = conn.execute(
        text(
            "WITH nxt AS (SELECT lower_sort_key, lower_reached_at, lower_owner_id"
            "  FROM leaderboard_rank_blocks WHERE leaderboard_id = :lb AND period_start = :ps"
            '  AND (lower_sort_key, lower_reached_at, lower_owner_id) > (:k, :r, :o COLLATE "C")'
            "  ORDER BY lower_sort_key, lower_reached_at, lower_owner_id LIMIT 1)"
            " SELECT r.sort_key, r.reached_at, r.owner_id FROM leaderboard_records r"
            " WHERE r.leaderboard_id = :lb AND r.period_start = :ps"
            ' AND (r.sort_key, r.reached_at, r.owner_id) >= (:k, :r, :o COLLATE "C")'
            " AND NOT EXISTS (SELECT 1 FROM nxt WHERE (r.sort_key, r.reached_at, r.owner_id)"
            "  >= (nxt.lower_sort_key, nxt.lower_reached_at, nxt.lower_owner_id))"
            " ORDER BY r.sort_key, r.reached_at, r.owner_id"
        ),
        {
            "lb": block.leaderboard_id,
            "ps": block.period_start,
            "k": block.lower_sort_key,
            "r": block.lower_reached_at,
            "o": block.lower_owner_id,
        },
    ).all()
    sizes = [min(BLOCK_SIZE, len(rows) - i) for i in range(0, len(rows), BLOCK_SIZE)]
    conn.execute(update(rank_blocks_table).where(_blocks.id == block_id).values(size=sizes[0]))
    _insert_blocks(
        conn,
        block.leaderboard_id,
        block.period_start,
        [(tuple(rows[i * BLOCK_SIZE]), n) for i, n in enumerate(sizes) if i > 0],
    )


def _insert_blocks(
    conn: Connection,
    leaderboard_id: str,
    period_start: datetime,
    blocks: list[tuple[tuple[Any, ...], int]],
) -> None:
    if not blocks:
        return
    conn.execute(
        _INSERT_BLOCK,
        [_block_row(leaderboard_id, period_start, lower, n) for lower, n in blocks],
    )


def rebuild_rank_blocks(conn: Connection, leaderboard_id: str, period_start: datetime) -> int:
    """Recompute the blocks of one period from its records (after a bulk load); returns count."""
    boards, records = leaderboards_table.c, records_table.c
    conn.execute(select(boards.id).where(boards.id == leaderboard_id).with_for_update())
    conn.execute(
        delete(rank_blocks_table).where(
            _blocks.leaderboard_id == leaderboard_id, _blocks.period_start == period_start
        )
    )
    best_first = (records.sort_key, records.reached_at, records.owner_id)
    ordered = (
        select(
            *best_first,
            func.count().over().label("total"),
            (func.row_number().over(order_by=best_first) - 1).label("i"),
        )
        .where(records.leaderboard_id == leaderboard_id, records.period_start == period_start)
        .subquery()
    )
    # Every BLOCK_SIZE-th record, best first: the lower bounds of the new blocks.
    rows = conn.execute(
        select(ordered).where(ordered.c.i % BLOCK_SIZE == 0).order_by(ordered.c.i)
    ).all()
    total = rows[0].total if rows else 0
    blocks: list[tuple[tuple[Any, ...], int]] = [
        (
            FIRST_BLOCK_LOWER if n == 0 else (r.sort_key, r.reached_at, r.owner_id),
            min(BLOCK_SIZE, total - r.i),
        )
        for n, r in enumerate(rows)
    ] or [(FIRST_BLOCK_LOWER, 0)]
    _insert_blocks(conn, leaderboard_id, period_start, blocks)
    return len(blocks)
