"""POST /v1/battles/batch through nginx, the API, Kafka and the engine agent: each battle
answered on its own (queued, already known, 409 key reused, 422 invalid), every queued
battle resolved and rated once; the game key is checked before the body, the size is
capped; a batch the broker did not take withdraws its keyless battles only."""

import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.kafka import EventProducer, event_producer
from api.main import create_app
from api.routes.battles import MAX_BATCH_BATTLES
from cli.stack import free_port
from core.battles.contracts import parse_battle_request
from core.identity.app_users import create_app_user
from core.platform.topics import BATTLE_REQUESTS
from tests.integration.battles.test_battles_broker_down import _battles
from tests.integration.battles.test_battles_pipeline import wait_done
from tests.streaming_helpers import (  # noqa: F401 - fixtures
    GameWithKey,
    api_fixture,
    game_fixture,
    wait_for,
    worker_fixture,
)

pytestmark = pytest.mark.integration


def post_batch(api: httpx.Client, game: GameWithKey, battles: list) -> httpx.Response:
    return api.post(
        "/v1/battles/batch", json={"battles": battles}, headers={"X-Api-Key": game.api_key}
    )


@pytest.mark.usefixtures("worker")
def test_a_batch_is_answered_per_battle_and_every_queued_battle_is_rated_once(
    api: httpx.Client, game: GameWithKey, db_engine: Engine
) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    battles = [
        {"mode": "duel", "sides": [["ann"], ["bob"]], "idempotency_key": key},
        {"mode": "duel", "sides": [["cy"], ["dee"]]},
        {"mode": "duel", "sides": [["ann"], ["eve"]], "idempotency_key": key},  # reused
        {"mode": "duel", "sides": [["fay"], ["fay"]]},  # invalid: one player twice
        {"mode": "duel", "sides": [["ann"], ["bob"]], "idempotency_key": key},  # repeat
        "not a battle",
        {"mode": "ffa", "sides": [["gus"], ["hal", "ida"], ["jo"]]},
    ]
    response = post_batch(api, game, battles)
    assert response.status_code == 202, response.text
    answer = response.json()
    items = answer["battles"]
    assert [i["index"] for i in items] == list(range(len(battles)))
    assert [i["status_code"] for i in items] == [202, 202, 409, 422, 202, 422, 202]
    assert (answer["queued"], answer["refused"]) == (4, 3)
    assert [i["created"] for i in items if i["status_code"] == 202] == [True, True, False, True]
    assert items[2]["code"] == "idempotency_key_reused"
    assert items[3]["code"] == "invalid" and "named more than once" in items[3]["detail"]
    assert items[5]["detail"].startswith("battles.5")
    assert items[4]["battle_id"] == items[0]["battle_id"]

    done = {i["battle_id"]: wait_done(api, game, i["battle_id"]) for i in items if i["battle_id"]}
    assert len(done) == 3 and all(d["status"] == "resolved" for d in done.values())
    ffa = done[items[6]["battle_id"]]
    assert sorted(ffa["ranks"]) == [1, 2, 3] and len(ffa["rating_changes"]) == 4

    # The same batch again: nothing new, the keyed battle is known and resolved.
    again = post_batch(api, game, battles[:1]).json()["battles"][0]
    assert (again["battle_id"], again["status"], again["created"]) == (
        items[0]["battle_id"],
        "resolved",
        False,
    )
    with db_engine.connect() as conn:
        rated = conn.execute(
            text("SELECT player_id, battles FROM players WHERE game_id = :g ORDER BY 1"),
            {"g": game.game_id},
        ).all()
        history = conn.execute(
            text("SELECT count(*) FROM rating_history WHERE game_id = :g"), {"g": game.game_id}
        ).scalar()
    assert dict(rated) == {
        "ann": 1, "bob": 1, "cy": 1, "dee": 1, "gus": 1, "hal": 1, "ida": 1, "jo": 1
    }  # fmt: skip
    assert history == 8


def test_the_batch_needs_the_key_first_and_is_capped(
    api: httpx.Client, game: GameWithKey, stack_settings
) -> None:
    duel = {"mode": "duel", "sides": [["ann"], ["bob"]]}
    no_key = api.post("/v1/battles/batch", json={"battles": [duel]})
    assert no_key.status_code == 401, no_key.text
    # A wrong key with a body that is not JSON: the key is refused before the body is read.
    wrong = api.post(
        "/v1/battles/batch",
        content=b"{not json",
        headers={"X-Api-Key": "sk_wrong", "Content-Type": "application/json"},
    )
    assert wrong.status_code == 403, wrong.text
    huge = b'{"battles": [' + b" " * stack_settings.api_max_body_bytes + b"]}"
    too_big = api.post(
        "/v1/battles/batch",
        content=huge,
        headers={"X-Api-Key": game.api_key, "Content-Type": "application/json"},
    )
    assert too_big.status_code == 413, too_big.text
    too_many = post_batch(api, game, [duel] * (MAX_BATCH_BATTLES + 1))
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["code"] == "invalid"
    empty = post_batch(api, game, [])
    assert empty.status_code == 422, empty.text


def test_a_batch_kafka_did_not_take_withdraws_its_keyless_battles(
    stack_settings, db_engine: Engine, game: GameWithKey
) -> None:
    dead_broker = stack_settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{free_port()}", "kafka_produce_timeout_s": 2.0}
    )
    app = create_app()
    producer = EventProducer(dead_broker)
    app.dependency_overrides[event_producer] = lambda: producer
    battles = [
        {"mode": "duel", "sides": [["ann"], ["bob"]]},
        {"mode": "duel", "sides": [["cy"], ["dee"]], "idempotency_key": "b-1"},
        {"mode": "duel", "sides": [["eve"], ["fay"]]},
    ]
    with TestClient(app) as client:
        response = client.post(
            "/v1/battles/batch", json={"battles": battles}, headers={"X-Api-Key": game.api_key}
        )
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert _battles(db_engine, game.game_id) == [("b-1", "queued")]


@pytest.mark.usefixtures("worker")
def test_the_items_a_linked_player_owns_make_their_side_stronger_and_are_stored(
    api: httpx.Client, game: GameWithKey, db_engine: Engine
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    with Session(db_engine) as session, session.begin():
        create_app_user(session, user)
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO catalog_items (game_id, item_id, name, stackable, properties) VALUES"
                " (:g, 'sword', 'Sword', true, '{\"power\": 200}'),"
                " (:g, 'hat', 'Hat', false, '{\"power\": \"high\"}')"
            ),
            {"g": game.game_id},
        )
        conn.execute(
            text(
                "INSERT INTO inventory_items (game_id, owner_id, item_id, unlocked_by, quantity)"
                " VALUES (:g, :u, 'sword', 'shop', 2), (:g, :u, 'sword', 'gift', 1),"
                " (:g, :u, 'hat', 'shop', 1)"
            ),
            {"g": game.game_id, "u": user},
        )
        conn.execute(
            text("INSERT INTO player_links (game_id, player_id, user_id) VALUES (:g, 'hero', :u)"),
            {"g": game.game_id, "u": user},
        )
    # 600 points of item power against equal ratings: the hero wins every duel.
    duels = [{"mode": "duel", "sides": [[f"z{i}"], ["hero"]]} for i in range(12)]
    items = post_batch(api, game, duels).json()["battles"]
    for item in items:
        done = wait_done(api, game, item["battle_id"])
        assert done["status"] == "resolved" and done["ranks"] == [2, 1]
        assert done["win_probabilities"][1] > 0.999
        assert done["items"] == {"hero": [["sword", 3, 200.0]]}  # the hat's power is no number


def test_a_games_battles_are_keyed_by_the_game_and_share_one_partition(
    api: httpx.Client, game: GameWithKey, stack_settings
) -> None:
    """One engine process owns a game's players: the records of a game's battles, posted in
    a batch or one by one, carry the game id as key, so they land in one partition."""
    posted = post_batch(
        api,
        game,
        [{"mode": "duel", "sides": [[f"a{i}"], [f"b{i}"]]} for i in range(40)],
    )
    assert posted.status_code == 202, posted.text
    ids = {item["battle_id"] for item in posted.json()["battles"]}
    single = api.post(
        "/v1/battles",
        json={"mode": "duel", "sides": [["c"], ["d"]]},
        headers={"X-Api-Key": game.api_key},
    )
    assert single.status_code == 202, single.text
    ids.add(single.json()["battle_id"])

    consumer = KafkaConsumer(
        bootstrap_servers=stack_settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    consumer.assign(
        [TopicPartition(BATTLE_REQUESTS, p) for p in consumer.partitions_for_topic(BATTLE_REQUESTS)]
    )
    seen: dict[str, tuple[bytes, int]] = {}

    def all_seen() -> bool:
        for record in consumer:
            request = parse_battle_request(record.value)
            if str(request.battle_id) in ids:
                seen[str(request.battle_id)] = (record.key, record.partition)
        return seen.keys() == ids

    try:
        wait_for(f"the {len(ids)} battles on {BATTLE_REQUESTS}", all_seen)
    finally:
        consumer.close()
    assert {key for key, _p in seen.values()} == {game.game_id.encode()}
    assert len({partition for _k, partition in seen.values()}) == 1
