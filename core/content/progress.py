"""Achievements and battle-pass progression, advanced inside the scoring batch's transaction.

:func:`apply_batch` is called by :func:`core.events.store.apply_batch` with the events
that transaction inserted into ``processed_events`` (never a duplicate), after the player
totals were added: so a replayed or duplicated event never advances progress twice, and
progress commits or rolls back with the totals. It is set-based: one statement per batch
(achievement progress from the totals, battle-pass XP from the events) and, only when
something unlocked, two more (the owners' inventory locks, then the grants with their
items, ledger entries and token mints). Each reward is a grant with an idempotency key of
its own (``achievement:ID:PLAYER``, ``battle_pass:SEASON:TIER:PLAYER``), so it is granted
once whatever happens. Items go to the app user the player is linked to; a player who is
not linked gets the grant recorded without an owner (``owner_id`` null, unclaimed). Tokens
are minted through ``reward_commands`` (``pending``, published by the scoring agent after
the commit like every other command).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.events.contracts import (
    GameEvent,
    MatchOutcome,
    MatchResult,
    Purchase,
    ScoreReached,
    SessionEnd,
)
from core.platform.db import json_rows
from core.rewards.commands import REWARD_COMMAND_NAMESPACE, RewardAction, RewardCommand

_TRAILING_NUMBER = re.compile(r"(\d{1,12})$")


@dataclass
class PlayerBatch:
    """What one player's new events of the batch bring: the last event, the highest
    level reached, and how many events of each XP kind."""

    game_id: str
    player_id: str
    last_event_id: uuid.UUID
    level: int | None = None
    xp_counts: dict[str, int] = field(default_factory=dict)


def level_of(label: str | None) -> int | None:
    """``"20"``, ``"level-20"``, ``"world1/level 20"`` → 20; None without a trailing number."""
    if label is None:
        return None
    match = _TRAILING_NUMBER.search(label)
    return int(match.group(1)) if match else None


def xp_kinds(event: GameEvent) -> list[str]:
    """The battle-pass XP kinds one event counts for (see ``core.content.catalog.XpKind``)."""
    payload = event.payload
    if isinstance(payload, MatchResult):
        won = payload.outcome is MatchOutcome.win
        return ["match_played", "match_won"] if won else ["match_played"]
    if isinstance(payload, ScoreReached):
        return ["score_reached"]
    if isinstance(payload, Purchase):
        return ["purchase"]
    if isinstance(payload, SessionEnd):
        return ["session"]
    return []


def fold_batch(events: Sequence[GameEvent]) -> list[PlayerBatch]:
    """Pure: the batch per player, in the events' order (the last one names the source)."""
    players: dict[tuple[str, str], PlayerBatch] = {}
    for event in events:
        key = (event.game_id, event.player_id)
        row = players.get(key)
        if row is None:
            row = players[key] = PlayerBatch(event.game_id, event.player_id, event.event_id)
        row.last_event_id = event.event_id
        if isinstance(event.payload, ScoreReached):
            level = level_of(event.payload.level)
            if level is not None and (row.level is None or level > row.level):
                row.level = level
        for kind in xp_kinds(event):
            row.xp_counts[kind] = row.xp_counts.get(kind, 0) + 1
    return list(players.values())


@dataclass(frozen=True)
class Unlock:
    """Something the batch unlocked: an achievement or a battle-pass tier, and its rewards."""

    source: str  # "achievement" | "battle_pass"
    game_id: str
    player_id: str
    source_id: str  # the achievement id, or "SEASON:TIER"
    source_event_id: uuid.UUID
    rewards: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        return f"{self.source}:{self.source_id}:{self.player_id}"

    @property
    def grant_id(self) -> uuid.UUID:
        return uuid.uuid5(REWARD_COMMAND_NAMESPACE, f"{self.game_id}:grant:{self.idempotency_key}")

    @property
    def command_id(self) -> uuid.UUID:
        return uuid.uuid5(
            REWARD_COMMAND_NAMESPACE, f"{self.game_id}:{self.idempotency_key}:{RewardAction.mint}"
        )

    @property
    def tokens(self) -> Decimal:
        return Decimal(str(self.rewards.get("tokens") or 0))

    def grant_row(self) -> dict[str, Any]:
        items = [i for i in self.rewards.get("items", []) if i.get("quantity", 0) > 0]
        return {
            "grant_id": self.grant_id,
            "game_id": self.game_id,
            "player_id": self.player_id,
            "source": self.source,
            "source_id": self.source_id,
            "idempotency_key": self.idempotency_key,
            "items": items,
            "tokens": self.tokens,
            "command_id": self.command_id,
            "source_event_id": self.source_event_id,
            "reason": f"{self.source}:{self.source_id}"[:128],
        }


_ADVANCE = text(
    """
    WITH batch AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS b(game_id text,
            player_id text, last_event_id uuid, level bigint, xp_counts jsonb)
    ),
    measured AS (
        SELECT a.game_id, a.achievement_id, b.player_id, b.last_event_id, a.threshold,
            CASE a.metric
                WHEN 'events' THEN t.events WHEN 'matches' THEN t.matches
                WHEN 'wins' THEN t.wins WHEN 'losses' THEN t.losses WHEN 'draws' THEN t.draws
                WHEN 'total_score' THEN t.total_score WHEN 'best_score' THEN t.best_score
                WHEN 'purchases' THEN t.purchases WHEN 'sessions' THEN t.sessions
                WHEN 'achievements' THEN t.achievements WHEN 'level' THEN b.level
            END AS value
        FROM batch b
        JOIN achievements a ON a.game_id = b.game_id AND a.is_active
        LEFT JOIN player_totals t ON t.game_id = b.game_id AND t.player_id = b.player_id
    ),
    progressed AS (
        INSERT INTO achievement_progress AS p (game_id, achievement_id, player_id, value,
            unlocked_at, source_event_id, updated_at)
        SELECT game_id, achievement_id, player_id, value,
            CASE WHEN value >= threshold THEN now() END, last_event_id, now()
        FROM measured WHERE value IS NOT NULL
        ON CONFLICT (game_id, achievement_id, player_id) DO UPDATE SET
            value = GREATEST(p.value, EXCLUDED.value),
            unlocked_at = EXCLUDED.unlocked_at,
            source_event_id = EXCLUDED.source_event_id,
            updated_at = EXCLUDED.updated_at
        WHERE p.unlocked_at IS NULL AND EXCLUDED.value > p.value
        RETURNING game_id, achievement_id, player_id, source_event_id, unlocked_at
    ),
    unlocked AS (
        SELECT pr.game_id, pr.achievement_id, pr.player_id, pr.source_event_id, a.rewards
        FROM progressed pr
        JOIN achievements a ON a.game_id = pr.game_id AND a.achievement_id = pr.achievement_id
        WHERE pr.unlocked_at IS NOT NULL
    ),
    earned AS (
        SELECT c.game_id, c.content_id, b.player_id,
            COALESCE((SELECT sum(COALESCE((c.xp_rules ->> k.key)::bigint, 0) * k.value::bigint)
                      FROM jsonb_each_text(b.xp_counts) AS k), 0)
            + COALESCE((SELECT sum(COALESCE((u.rewards ->> 'xp')::bigint, 0)) FROM unlocked u
                        WHERE u.game_id = b.game_id AND u.player_id = b.player_id), 0) AS xp
        FROM batch b
        JOIN catalog_content c ON c.game_id = b.game_id AND c.kind = 'battle_pass'
            AND c.is_active AND (c.starts_at IS NULL OR c.starts_at <= now())
            AND (c.ends_at IS NULL OR c.ends_at > now())
    ),
    leveled AS (
        INSERT INTO battle_pass_progress AS bp (game_id, content_id, player_id, xp, tier,
            previous_tier, updated_at)
        SELECT e.game_id, e.content_id, e.player_id, e.xp,
            COALESCE((SELECT max(ct.tier) FROM content_tiers ct WHERE ct.game_id = e.game_id
                      AND ct.content_id = e.content_id AND ct.xp_required <= e.xp), 0),
            0, now()
        FROM earned e WHERE e.xp > 0
        ON CONFLICT (game_id, content_id, player_id) DO UPDATE SET
            xp = bp.xp + EXCLUDED.xp,
            previous_tier = bp.tier,
            tier = GREATEST(bp.tier, COALESCE((SELECT max(ct.tier) FROM content_tiers ct
                WHERE ct.game_id = bp.game_id AND ct.content_id = bp.content_id
                AND ct.xp_required <= bp.xp + EXCLUDED.xp), 0)),
            updated_at = EXCLUDED.updated_at
        RETURNING game_id, content_id, player_id, previous_tier, tier
    )
    SELECT 'achievement' AS source, u.game_id, u.player_id, u.achievement_id AS source_id,
        u.source_event_id, u.rewards
    FROM unlocked u
    UNION ALL
    SELECT 'battle_pass', l.game_id, l.player_id, l.content_id || ':' || ct.tier,
        b.last_event_id, ct.rewards
    FROM leveled l
    JOIN content_tiers ct ON ct.game_id = l.game_id AND ct.content_id = l.content_id
        AND ct.tier > l.previous_tier AND ct.tier <= l.tier
    JOIN batch b ON b.game_id = l.game_id AND b.player_id = l.player_id
    """
)

# Every writer of one inventory takes its lock (core.content.inventory.lock_inventory), in
# owner order here, before the statement that reads the counts.
_LOCK_OWNERS = text(
    """
    SELECT pg_advisory_xact_lock(
        hashtextextended('inventory:' || k.game_id || ':' || k.user_id, 20))
    FROM (SELECT DISTINCT pl.game_id, pl.user_id
          FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(game_id text, player_id text)
          JOIN player_links pl ON pl.game_id = r.game_id AND pl.player_id = r.player_id
          ORDER BY pl.game_id, pl.user_id) AS k
    """
)

_GRANT = text(
    """
    WITH r AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(grant_id uuid,
            game_id text, player_id text, source text, source_id text, idempotency_key text,
            items jsonb, tokens numeric, command_id uuid, source_event_id uuid, reason text)
    ),
    owned AS (
        SELECT r.*, pl.user_id AS owner_id
        FROM r LEFT JOIN player_links pl ON pl.game_id = r.game_id AND pl.player_id = r.player_id
    ),
    granted AS (
        INSERT INTO grants (grant_id, game_id, requested_by, idempotency_key, request_hash,
            source, source_id, owner_id, player_id, unlocked_by, entries, reward_command_id,
            created_at)
        SELECT grant_id, game_id, 'progress', idempotency_key, md5(idempotency_key), source,
            source_id, owner_id, player_id, COALESCE(owner_id, player_id),
            jsonb_build_object('items', items, 'tokens', tokens),
            CASE WHEN tokens > 0 THEN command_id END, now()
        FROM owned
        ON CONFLICT (game_id, requested_by, idempotency_key) DO NOTHING
        RETURNING grant_id, game_id, owner_id, entries
    ),
    wanted AS (
        SELECT g.game_id, g.owner_id, i.item_id, sum(i.quantity)::int AS quantity,
            (array_agg(g.grant_id ORDER BY g.grant_id))[1] AS grant_id
        FROM granted g
        CROSS JOIN LATERAL jsonb_to_recordset(g.entries -> 'items') AS i(item_id text, quantity int)
        WHERE g.owner_id IS NOT NULL
        GROUP BY g.game_id, g.owner_id, i.item_id
    ),
    fitting AS (
        -- an earned reward never passes the item's max count: the units over it are dropped
        SELECT w.game_id, w.owner_id, w.item_id, w.grant_id,
            CASE WHEN lim.n IS NULL THEN w.quantity
                 ELSE LEAST(w.quantity, GREATEST(lim.n - held.n, 0)) END AS quantity
        FROM wanted w
        JOIN catalog_items ci ON ci.game_id = w.game_id AND ci.item_id = w.item_id
        CROSS JOIN LATERAL (SELECT CASE WHEN ci.stackable THEN ci.max_count
                                        ELSE LEAST(1, COALESCE(ci.max_count, 1)) END AS n) AS lim
        CROSS JOIN LATERAL (SELECT COALESCE(sum(s.quantity), 0) AS n FROM inventory_items s
                            WHERE s.game_id = w.game_id AND s.owner_id = w.owner_id
                            AND s.item_id = w.item_id) AS held
    ),
    stacked AS (
        INSERT INTO inventory_items AS s (game_id, owner_id, item_id, unlocked_by, quantity,
            acquired_at, updated_at)
        SELECT game_id, owner_id, item_id, owner_id, quantity, now(), now()
        FROM fitting WHERE quantity > 0
        ON CONFLICT (game_id, owner_id, item_id, unlocked_by) DO UPDATE SET
            quantity = s.quantity + EXCLUDED.quantity, updated_at = EXCLUDED.updated_at
        RETURNING 1
    ),
    logged AS (
        INSERT INTO inventory_ledger (game_id, owner_id, item_id, delta, reason, unlocked_by,
            grant_id, at)
        -- what was put in, after the max count (one row per owner and item of the batch)
        SELECT game_id, owner_id, item_id, quantity, 'granted', owner_id, grant_id, now()
        FROM fitting WHERE quantity > 0
        RETURNING 1
    )
    INSERT INTO reward_commands (command_id, source_event_id, action, status, game_id,
        player_id, token, amount, reason, issued_at, updated_at)
    SELECT r.command_id, r.source_event_id, 'mint', 'pending', r.game_id, r.player_id,
        :token, r.tokens, r.reason, now(), now()
    FROM r JOIN granted g ON g.grant_id = r.grant_id
    WHERE r.tokens > 0
    ON CONFLICT (command_id) DO NOTHING
    RETURNING command_id, source_event_id, game_id, player_id, amount, reason, issued_at
    """
)


def apply_batch(conn: Connection, events: Sequence[GameEvent], token: str) -> list[RewardCommand]:
    """Advance achievements and battle passes by the batch's new events (same transaction
    as the totals; see the module docstring). Returns the token mints to publish."""
    players = fold_batch(events)
    if not players:
        return []
    rows = [vars(p) for p in players]
    unlocks = [
        Unlock(
            source=r.source,
            game_id=r.game_id,
            player_id=r.player_id,
            source_id=r.source_id,
            source_event_id=r.source_event_id,
            rewards=r.rewards or {},
        )
        for r in conn.execute(_ADVANCE, json_rows(rows))
    ]
    if not unlocks:
        return []
    grant_rows = [u.grant_row() for u in unlocks]
    conn.execute(_LOCK_OWNERS, json_rows(grant_rows))
    minted = conn.execute(_GRANT, {**json_rows(grant_rows), "token": token}).mappings()
    return [
        RewardCommand(
            command_id=m["command_id"],
            action=RewardAction.mint,
            game_id=m["game_id"],
            player_id=m["player_id"],
            token=token,
            amount=m["amount"],
            reason=m["reason"],
            source_event_id=m["source_event_id"],
            issued_at=m["issued_at"],
        )
        for m in minted
    ]
