"""The engine's match_result records: byte for byte what the GameEvent contract dumps (the
scoring agent decodes them with it), without building the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from core.battles.models import BattleStatus
from core.battles.store import (
    EVENT_ID_NAMESPACE,
    StoredBattle,
    _event_id,
    match_event_records,
    match_events,
)
from core.events.contracts import GameEvent

players = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,20}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
) | st.datetimes(min_value=datetime(2020, 1, 1), timezones=st.just(timezone(timedelta(hours=2))))


@st.composite
def resolved_battles(draw: st.DrawFn) -> StoredBattle:
    names = draw(st.lists(players, min_size=2, max_size=12, unique=True))
    cut = sorted(draw(st.sets(st.integers(1, len(names) - 1), min_size=1, max_size=5)))
    sides = [names[a:b] for a, b in zip([0, *cut], [*cut, len(names)], strict=True)]
    ranks = draw(st.permutations(range(1, len(sides) + 1)))
    at = draw(times)
    return StoredBattle(
        battle_id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        game_id=draw(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)),
        sides=sides,
        status=BattleStatus.resolved,
        result={"ranks": list(ranks)},
        requested_at=at,
        resolved_at=draw(
            st.none() | st.just(at + timedelta(microseconds=draw(st.integers(0, 10**7))))
        ),
    )


@given(resolved_battles())
def test_the_records_are_the_contracts_json_of_the_events(row: StoredBattle) -> None:
    expected = [(e.player_id.encode(), e.model_dump_json().encode()) for e in match_events(row)]
    records = match_event_records(row)
    assert records == expected
    assert [GameEvent.model_validate_json(value) for _key, value in records] == match_events(row)


@given(st.uuids(), players)
def test_event_ids_are_uuid5_of_battle_and_player(battle_id: uuid.UUID, player: str) -> None:
    expected = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{battle_id}/{player}"))
    assert _event_id(str(battle_id), player) == expected
