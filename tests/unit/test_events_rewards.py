"""Reward rules: wins mint, token purchases burn, ids are stable per event and action."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.events import Achievement, GameEvent, MatchResult, Purchase, SessionStart
from core.rewards import RewardAction, RewardRules, command_id_for, reward_commands_for

NOW = datetime(2026, 11, 22, tzinfo=UTC)
RULES = RewardRules(mint_per_win=Decimal("10"), mint_per_draw=Decimal("2"))


def event(payload, event_id: uuid.UUID | None = None) -> GameEvent:
    return GameEvent(
        event_id=event_id or uuid.uuid4(),
        game_id="tri",
        player_id="p1",
        type=payload.type,
        payload=payload,
        occurred_at=NOW,
    )


def test_a_win_mints_the_configured_amount() -> None:
    e = event(MatchResult(outcome="win", score=5))
    [command] = reward_commands_for(e, RULES, NOW)
    assert command.action is RewardAction.mint
    assert command.amount == Decimal("10")
    assert command.token == "STRIDE"
    assert (command.player_id, command.game_id, command.source_event_id) == (
        "p1",
        "tri",
        e.event_id,
    )


def test_a_loss_earns_nothing_and_a_zero_rule_is_off() -> None:
    assert reward_commands_for(event(MatchResult(outcome="loss", score=5)), RULES, NOW) == []
    off = RewardRules(mint_per_win=Decimal(0))
    assert reward_commands_for(event(MatchResult(outcome="win", score=5)), off, NOW) == []


def test_a_draw_mints_the_draw_amount() -> None:
    [command] = reward_commands_for(event(MatchResult(outcome="draw", score=1)), RULES, NOW)
    assert command.amount == Decimal("2")


def test_a_token_purchase_burns_its_price_and_fiat_does_not() -> None:
    token = event(Purchase(item="sword", price=Decimal("12.5"), currency="STRIDE"))
    [burn] = reward_commands_for(token, RULES, NOW)
    assert (burn.action, burn.amount, burn.reason) == (
        RewardAction.burn,
        Decimal("12.5"),
        "purchase:sword",
    )
    fiat = event(Purchase(item="sword", price=Decimal("12.5"), currency="USD"))
    assert reward_commands_for(fiat, RULES, NOW) == []
    assert (
        reward_commands_for(event(Purchase(item="x", price=0, currency="STRIDE")), RULES, NOW) == []
    )


def test_achievements_mint_per_point_when_configured() -> None:
    e = event(Achievement(achievement_id="first-blood", points=5))
    assert reward_commands_for(e, RULES, NOW) == []
    rules = RewardRules(mint_per_achievement_point=Decimal("0.5"))
    [command] = reward_commands_for(e, rules, NOW)
    assert command.amount == Decimal("2.5")


def test_other_events_earn_nothing() -> None:
    assert reward_commands_for(event(SessionStart(session_id="s1")), RULES, NOW) == []


@given(st.uuids())
def test_command_ids_are_a_function_of_event_and_action(event_id: uuid.UUID) -> None:
    first = reward_commands_for(event(MatchResult(outcome="win", score=1), event_id), RULES, NOW)
    again = reward_commands_for(
        event(MatchResult(outcome="win", score=1), event_id), RULES, datetime.now(UTC)
    )
    assert [c.command_id for c in first] == [c.command_id for c in again]
    assert command_id_for(event_id, RewardAction.mint) != command_id_for(
        event_id, RewardAction.burn
    )
