"""The economy's pure rules: specs, limits, stack plans, battle-pass XP per event,
levels, reward idempotency keys, the /v1 ↔ /v2 pack mapping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from api.routes.catalog_packs import PackWriteV1, PackWriteV2
from core.content.catalog import (
    ContentSpec,
    PackSpec,
    effective_limit,
    plain,
    window_problem,
)
from core.content.inventory import MaxCountReached, NotEnough, check_room, plan_take
from core.content.progress import Unlock, fold_batch, level_of
from core.events.contracts import GameEvent, MatchResult, ScoreReached, SessionEnd

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_non_stackable_items_are_held_once_and_limits_hold() -> None:
    assert effective_limit(stackable=False, max_count=None) == 1
    assert effective_limit(stackable=True, max_count=None) is None
    assert effective_limit(stackable=True, max_count=7) == 7
    check_room(owned=2, adding=1, limit=3, item_id="x")
    with pytest.raises(MaxCountReached, match="at most 3 of 'x': they have 3"):
        check_room(owned=3, adding=1, limit=3, item_id="x")
    check_room(owned=10**6, adding=1, limit=None, item_id="x")


def test_units_are_taken_from_the_oldest_stacks_first() -> None:
    stacks = [("carol", 2), ("dave", 5)]
    assert plan_take(stacks, 3, "rose") == [("carol", 2), ("dave", 1)]
    assert plan_take(stacks, 1, "rose") == [("carol", 1)]
    with pytest.raises(NotEnough, match="you own 7 of 'rose', fewer than 8"):
        plan_take(stacks, 8, "rose")


def test_sale_windows() -> None:
    assert window_problem(None, None, NOW) == ""
    assert "not on sale before" in window_problem(NOW + timedelta(seconds=1), None, NOW)
    assert "sale ended" in window_problem(None, NOW, NOW)  # ends_at is exclusive


def test_battle_pass_specs_are_checked() -> None:
    tiers = [{"tier": 1, "xp_required": 10}, {"tier": 2, "xp_required": 10}]
    with pytest.raises(ValidationError, match="more xp_required"):
        ContentSpec(kind="battle_pass", name="S", tiers=tiers)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="numbered 1, 2, 3"):
        ContentSpec(kind="battle_pass", name="S", tiers=[{"tier": 2, "xp_required": 1}])  # type: ignore[arg-type, list-item]
    with pytest.raises(ValidationError, match="belong to a battle_pass"):
        ContentSpec(kind="unlockable", name="U", xp_rules={"match_won": 1})  # type: ignore[arg-type, dict-item]
    with pytest.raises(ValidationError, match="xp_rules"):
        ContentSpec(kind="battle_pass", name="S", xp_rules={"jumping": 1})  # type: ignore[arg-type, dict-item]


def test_pack_specs_are_checked() -> None:
    price = {"amount": "1", "currency": "USD"}
    with pytest.raises(ValidationError, match="at least one item or content"):
        PackSpec(name="p", price=price)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="appears once"):
        PackSpec(name="p", price=price, items=[{"item_id": "a"}, {"item_id": "a"}])  # type: ignore[arg-type, list-item]
    with pytest.raises(ValidationError, match="ends_at must be after starts_at"):
        PackSpec(name="p", price=price, content=["c"], starts_at=NOW, ends_at=NOW)  # type: ignore[arg-type]


def test_v1_and_v2_pack_bodies_map_onto_one_spec() -> None:
    common = {"name": "P", "items": [{"item_id": "gem", "quantity": 2}]}
    v1 = PackWriteV1(**common, price=Decimal("4.99"), currency="USD", gift_allowed=False)  # type: ignore[arg-type]
    v2 = PackWriteV2(**common, price={"amount": "4.99", "currency": "USD"}, giftable=False)  # type: ignore[arg-type]
    assert v1.spec() == v2.spec()
    with pytest.raises(ValidationError):  # v2 fields in a v1 body are refused, not ignored
        PackWriteV1(**common, price=Decimal(1), currency="USD", giftable=True)  # type: ignore[arg-type, call-arg]


def test_prices_read_plainly() -> None:
    assert str(plain(Decimal("4.990000000000000000"))) == "4.99"
    assert str(plain(Decimal("100.000000000000000000"))) == "100"


def _event(player: str, payload: MatchResult | ScoreReached | SessionEnd) -> GameEvent:
    return GameEvent(
        event_id=uuid.uuid4(),
        game_id="g",
        player_id=player,
        type=payload.type,  # type: ignore[arg-type]
        payload=payload,
        occurred_at=NOW,
    )


def test_a_batch_folds_per_player_with_xp_kinds_and_the_highest_level() -> None:
    events = [
        _event("a", MatchResult(outcome="win", score=1)),  # type: ignore[arg-type]
        _event("a", MatchResult(outcome="loss", score=1)),  # type: ignore[arg-type]
        _event("a", ScoreReached(score=1, level="level-7")),
        _event("a", ScoreReached(score=1, level="12")),
        _event("a", ScoreReached(score=1, level="boss")),
        _event("b", SessionEnd(session_id="s", duration_s=3)),
    ]
    a, b = fold_batch(events)
    assert (a.player_id, a.level, a.last_event_id) == ("a", 12, events[4].event_id)
    assert a.xp_counts == {"match_played": 2, "match_won": 1, "score_reached": 3}
    assert (b.level, b.xp_counts) == (None, {"session": 1})
    assert [level_of(x) for x in ("world-1/level 20", "20", "boss", None)] == [20, 20, None, None]


def test_reward_grants_and_mints_have_ids_of_their_own_forever() -> None:
    def unlock(source_id: str) -> Unlock:
        return Unlock("achievement", "g", "p", source_id, uuid.uuid4(), {"tokens": "2"})

    first, again, other = unlock("ten-wins"), unlock("ten-wins"), unlock("level-20")
    assert first.idempotency_key == "achievement:ten-wins:p"
    assert (first.grant_id, first.command_id) == (again.grant_id, again.command_id)
    assert first.grant_id != other.grant_id and first.command_id != other.command_id
    assert first.tokens == Decimal(2)
