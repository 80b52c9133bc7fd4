"""Player totals per (game, player): the pure fold of game events into additive deltas."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.events.contracts import (
    Achievement,
    GameEvent,
    MatchOutcome,
    MatchResult,
    Purchase,
    ScoreReached,
    SessionEnd,
    SessionStart,
)


@dataclass
class TotalsDelta:
    """What one batch adds to a player's totals (every field adds, except best/first/last)."""

    game_id: str
    player_id: str
    events: int = 0
    matches: int = 0
    wins: int = 0
    losses: int = 0
    draws: int = 0
    total_score: int = 0
    best_score: int | None = None
    purchases: int = 0
    token_spent: Decimal = field(default_factory=Decimal)
    achievements: int = 0
    sessions: int = 0
    play_seconds: float = 0.0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None

    def add(self, event: GameEvent, occurred_at: datetime, token: str) -> None:
        self.events += 1
        payload = event.payload
        if isinstance(payload, MatchResult):
            self.matches += 1
            self.wins += payload.outcome is MatchOutcome.win
            self.losses += payload.outcome is MatchOutcome.loss
            self.draws += payload.outcome is MatchOutcome.draw
        if isinstance(payload, MatchResult | ScoreReached):
            self.total_score += payload.score
            if self.best_score is None or payload.score > self.best_score:
                self.best_score = payload.score
        elif isinstance(payload, Purchase):
            self.purchases += 1
            if payload.currency == token:
                self.token_spent += payload.price
        elif isinstance(payload, Achievement):
            self.achievements += 1
        elif isinstance(payload, SessionStart):
            self.sessions += 1
        elif isinstance(payload, SessionEnd):
            self.play_seconds += payload.duration_s
        if self.first_event_at is None or occurred_at < self.first_event_at:
            self.first_event_at = occurred_at
        if self.last_event_at is None or occurred_at > self.last_event_at:
            self.last_event_at = occurred_at


def fold_totals(events: Iterable[tuple[GameEvent, datetime]], token: str) -> list[TotalsDelta]:
    """One delta per (game, player) for ``(event, corrected occurred_at)`` pairs, sorted by key.

    Sorted so concurrent writers lock player rows in the same order (no deadlocks).
    """
    deltas: dict[tuple[str, str], TotalsDelta] = {}
    for event, occurred_at in events:
        key = (event.game_id, event.player_id)
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = TotalsDelta(event.game_id, event.player_id)
        delta.add(event, occurred_at, token)
    return [deltas[k] for k in sorted(deltas)]
