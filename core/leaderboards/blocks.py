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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from sqlalchemy import text
from sqlalchemy.engine import Connection

BLOCK_SIZE = 1000
# A block is split once it holds more than this many records.
BLOCK_SPLIT_AT = 2 * BLOCK_SIZE
# Lower bound of the first block of a period: sorts before every record.
FIRST_BLOCK_LOWER = (-(2**63), datetime(1, 1, 1, tzinfo=UTC), "")

RankTuple = tuple[int, datetime, str]  # sort_key, reached_at, owner_id


def _json_rows(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Rows as one JSON parameter (:rows): much cheaper to send than one array per column."""
    return {"rows": pydantic_core.to_json(list(rows)).decode()}


def _open_first_blocks(conn: Connection, periods: list[tuple[str, datetime]]) -> None:
    """Give each new (leaderboard, period start) its first block, empty, before every record."""
    conn.execute(
        text(
            "INSERT INTO leaderboard_rank_blocks (leaderboard_id, period_start, lower_sort_key,"
            " lower_reached_at, lower_owner_id, size)"
            " SELECT lb, ps, :k, :r, :o, 0 FROM unnest(CAST(:ids AS text[]),"
            " CAST(:starts AS timestamptz[])) AS t(lb, ps) ON CONFLICT DO NOTHING"
        ),
        {
            "ids": [lb for lb, _ in periods],
            "starts": [start for _, start in periods],
            "k": FIRST_BLOCK_LOWER[0],
            "r": FIRST_BLOCK_LOWER[1],
            "o": FIRST_BLOCK_LOWER[2],
        },
    )


def _blocks_of(conn: Connection, lookups: list[tuple[str, datetime, RankTuple]]) -> list[int]:
    """The id of the block holding each (leaderboard, period, rank tuple)."""
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
        _json_rows(
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
    block = conn.execute(
        text(
            "SELECT leaderboard_id, period_start, lower_sort_key, lower_reached_at,"
            " lower_owner_id FROM leaderboard_rank_blocks WHERE id = :id"
        ),
        {"id": block_id},
    ).one()
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
    conn.execute(
        text("UPDATE leaderboard_rank_blocks SET size = :n WHERE id = :id"),
        {"id": block_id, "n": sizes[0]},
    )
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
        text(
            "INSERT INTO leaderboard_rank_blocks (leaderboard_id, period_start, lower_sort_key,"
            " lower_reached_at, lower_owner_id, size)"
            " SELECT :lb, :ps, k, r, o, n FROM unnest(CAST(:k AS bigint[]),"
            " CAST(:r AS timestamptz[]), CAST(:o AS text[]), CAST(:n AS integer[]))"
            " AS t(k, r, o, n)"
        ),
        {
            "lb": leaderboard_id,
            "ps": period_start,
            "k": [lower[0] for lower, _ in blocks],
            "r": [lower[1] for lower, _ in blocks],
            "o": [lower[2] for lower, _ in blocks],
            "n": [n for _, n in blocks],
        },
    )


def rebuild_rank_blocks(conn: Connection, leaderboard_id: str, period_start: datetime) -> int:
    """Recompute the blocks of one period from its records (after a bulk load); returns count."""
    conn.execute(
        text("SELECT 1 FROM leaderboards WHERE id = :id FOR UPDATE"), {"id": leaderboard_id}
    )
    conn.execute(
        text(
            "DELETE FROM leaderboard_rank_blocks WHERE leaderboard_id = :lb AND period_start = :ps"
        ),
        {"lb": leaderboard_id, "ps": period_start},
    )
    rows = conn.execute(
        text(
            "SELECT i, sort_key, reached_at, owner_id, total FROM ("
            " SELECT sort_key, reached_at, owner_id, count(*) OVER () AS total,"
            "  row_number() OVER (ORDER BY sort_key, reached_at, owner_id) - 1 AS i"
            " FROM leaderboard_records WHERE leaderboard_id = :lb AND period_start = :ps) t"
            " WHERE i % :size = 0 ORDER BY i"
        ),
        {"lb": leaderboard_id, "ps": period_start, "size": BLOCK_SIZE},
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
