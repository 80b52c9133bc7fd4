"""Reward rules: wins mint, token purchases burn, ids are stable per event and action."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.events.contracts import (
    Achievement,
    GameEvent,
    MatchResult,
    Purchase,
    ScoreReached,
    SessionEnd,
    SessionStart,
)
from core.rewards.commands import (
    REWARD_COMMAND_NAMESPACE,
    RewardAction,
    RewardCommand,
    RewardRules,
    command_id_for,
    reward_commands_for,
)

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
def test_command_ids_are_a_function_of_game_event_and_action(event_id: uuid.UUID) -> None:
    first = reward_commands_for(event(MatchResult(outcome="win", score=1), event_id), RULES, NOW)
    again = reward_commands_for(
        event(MatchResult(outcome="win", score=1), event_id), RULES, datetime.now(UTC)
    )
    assert [c.command_id for c in first] == [c.command_id for c in again]
    assert command_id_for("tri", event_id, RewardAction.mint) != command_id_for(
        "tri", event_id, RewardAction.burn
    )
    assert command_id_for("tri", event_id, RewardAction.mint) != command_id_for(
        "other", event_id, RewardAction.mint
    )  # event ids are unique per game only


@given(st.uuids(), st.sampled_from(list(RewardAction)))
def test_command_ids_are_the_uuid5_of_game_event_and_action(
    event_id: uuid.UUID, action: RewardAction
) -> None:
    expected = uuid.uuid5(REWARD_COMMAND_NAMESPACE, f"tri:{event_id}:{action.value}")
    assert command_id_for("tri", event_id, action) == expected
    assert command_id_for("tri", event_id, action).version == 5


FIXED_ID = uuid.UUID("0b7f3c1e-2d4a-4c6b-9e8f-1a2b3c4d5e6f")


def test_command_json_is_pinned() -> None:
    """The wire value consumers see (ids included) must not move with refactors. (The ids
    changed once, on purpose, when the game became part of them: migration 0010.)"""
    e = event(MatchResult(outcome="win", score=5), FIXED_ID)
    [command] = reward_commands_for(e, RULES, NOW)
    assert command.model_dump_json() == (
        '{"schema_version":1,"command_id":"bbf9938c-b44e-5b65-bf7e-4030928f1551",'
        '"action":"mint","game_id":"tri","player_id":"p1","token":"STRIDE","amount":"10",'
        '"reason":"match_won","source_event_id":"0b7f3c1e-2d4a-4c6b-9e8f-1a2b3c4d5e6f",'
        '"issued_at":"2026-11-22T00:00:00Z"}'
    )
    burn = event(Purchase(item="sword", price=Decimal("12.5"), currency="STRIDE"), FIXED_ID)
    [command] = reward_commands_for(burn, RULES, NOW)
    assert str(command.command_id) == "3257a3d5-5a29-5699-b13e-88421e07fce5"


PAYLOADS = [
    MatchResult(outcome="win", score=5),
    MatchResult(outcome="draw", score=1),
    MatchResult(outcome="loss", score=0),
    ScoreReached(score=7),
    Purchase(item="sword", price=Decimal("12.5"), currency="STRIDE"),
    Purchase(item="sword", price=Decimal("0.000000000000000001"), currency="STRIDE"),
    Purchase(item="sword", price=Decimal(0), currency="STRIDE"),
    Purchase(item="sword", price=Decimal("3"), currency="USD"),
    # 36 digits: the command carries it exactly
    Purchase(
        item="sword", price=Decimal("123456789012345678.123456789012345678"), currency="STRIDE"
    ),
    Achievement(achievement_id="a" * 128, points=3),  # the reason is cut to 128 characters
    Achievement(achievement_id="none", points=0),
    SessionStart(session_id="s1"),
    SessionEnd(session_id="s1", duration_s=12.5),
]
ALL_RULES = [
    RewardRules(),
    RULES,
    RewardRules(mint_per_win=Decimal(0), burn_token_purchases=False),
    RewardRules(mint_per_draw=Decimal("0.25"), mint_per_achievement_point=Decimal("0.5")),
    RewardRules(token="GEMS", mint_per_achievement_point=Decimal("1E+3")),
]


@pytest.mark.parametrize("rules", ALL_RULES)
@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_commands_are_valid(payload, rules: RewardRules) -> None:  # type: ignore[no-untyped-def]
    commands = reward_commands_for(event(payload), rules, NOW)
    assert len(commands) <= 1  # never two commands for one event
    for command in commands:
        validated = RewardCommand.model_validate(command.model_dump())
        assert validated == command
        assert validated.model_dump_json() == command.model_dump_json()
        assert len(command.reason) <= 128
        assert command.amount == getattr(payload, "price", command.amount)  # a burn: exact


def test_the_reason_is_cut_to_128_characters() -> None:
    rules = RewardRules(mint_per_achievement_point=Decimal(1))
    [command] = reward_commands_for(
        event(Achievement(achievement_id="a" * 128, points=1)), rules, NOW
    )
    assert command.reason == ("achievement:" + "a" * 128)[:128]


def test_amounts_that_are_not_valid_amounts_are_refused() -> None:
    with pytest.raises(ValidationError):
        RewardRules(mint_per_win=Decimal("0.0000000000000000001"))  # 19 decimal places
    with pytest.raises(ValidationError):
        RewardRules(mint_per_draw=Decimal("1E+36"))  # 37 digits
    with pytest.raises(ValidationError):  # times 10**9 points it would not be an Amount
        RewardRules(mint_per_achievement_point=Decimal("1E+26"))


def test_the_largest_achievement_reward_is_still_a_valid_command() -> None:
    """A setting can never make an achievement event fail in the worker (a poison message
    that would stall its partition): the largest rate times the most points is an Amount."""
    rate = Decimal("99999999.999999999999999999")  # 26 digits, 18 decimal places
    rules = RewardRules(mint_per_achievement_point=rate)
    [command] = reward_commands_for(
        event(Achievement(achievement_id="a", points=10**9)), rules, NOW
    )
    assert command.amount == rate * 10**9
    assert RewardCommand.model_validate(command.model_dump()) == command
