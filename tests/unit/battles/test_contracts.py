"""The BattleRequest v1 contract and the posted battle."""

import uuid
from datetime import UTC, datetime

import pytest

from core.battles.contracts import IncomingBattle, parse_battle_request


def test_a_stamped_request_round_trips() -> None:
    posted = IncomingBattle(mode="duel", sides=[["ann"], ["bob", "cat"]], idempotency_key="k1")
    battle_id = posted.battle_id("tri")
    assert battle_id == posted.battle_id("tri") != posted.battle_id("other")
    request = posted.stamp("tri", battle_id, datetime.now(UTC))
    assert parse_battle_request(request.model_dump_json().encode()) == request
    assert request.players == ["ann", "bob", "cat"]


def test_without_a_key_each_post_is_a_new_battle() -> None:
    posted = IncomingBattle(mode="duel", sides=[["ann"], ["bob"]])
    assert posted.battle_id("tri") != posted.battle_id("tri")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "battle: Invalid JSON"),
        (b'{"mode": "duel"}', "battle.sides: Field required"),
        (
            b'{"schema_version": 1, "battle_id": "%s", "game_id": "tri", "mode": "duel",'
            b' "sides": [["ann"]], "requested_at": "2026-12-01T10:00:00Z"}'
            % str(uuid.uuid4()).encode(),
            "battle.sides: List should have at least 2 items",
        ),
        (
            b'{"schema_version": 1, "battle_id": "%s", "game_id": "tri", "mode": "duel",'
            b' "sides": [["ann"], ["ann"]], "requested_at": "2026-12-01T10:00:00Z"}'
            % str(uuid.uuid4()).encode(),
            "named more than once",
        ),
    ],
)
def test_bad_requests_are_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_battle_request(raw)


def test_every_battle_of_a_game_has_the_same_record_key() -> None:
    """Keyed by game, a game's battles share one partition, so one engine process owns
    the game's players (docs/battles.md)."""
    now = datetime.now(UTC)
    duel = IncomingBattle(mode="duel", sides=[["ann"], ["bob"]])
    brawl = IncomingBattle(mode="brawl", sides=[["cy"], ["dee"], ["eve"]])
    keys = {b.stamp("tri", b.battle_id("tri"), now).record_key() for b in (duel, brawl, duel)}
    assert keys == {b"tri"}
    assert duel.stamp("quad", uuid.uuid4(), now).record_key() == b"quad"
