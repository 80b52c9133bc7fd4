"""``/v1/leaderboards`` and ``stride leaderboards`` against the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from api.main import create_app
from cli.main import app as cli_app
from core.identity.game_keys import create_game
from core.leaderboards import writer
from core.leaderboards.rules import ScoreSubmission
from core.platform.db import session_scope


@pytest.fixture(scope="module")
def client(db_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def new_game() -> tuple[str, str]:
    game_id = f"g-{uuid.uuid4().hex[:10]}"
    with session_scope() as session:
        key = create_game(session, game_id, game_id)
    return game_id, key.api_key


def create(client: TestClient, key: str | None, **body) -> object:
    headers = {"X-Api-Key": key} if key else {}
    return client.post("/v1/leaderboards", json=body, headers=headers)


def fill(engine: Engine, game_id: str, scores: dict[str, int]) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        writer.submit_scores(
            conn,
            [
                ScoreSubmission(game_id, owner, score, uuid.uuid4(), now - timedelta(seconds=i))
                for i, (owner, score) in enumerate(scores.items())
            ],
        )


def test_creating_a_leaderboard_needs_the_games_key(client: TestClient) -> None:
    game, key = new_game()
    other, other_key = new_game()
    board = f"lb-{uuid.uuid4().hex[:8]}"
    assert create(client, None, id=board, game_id=game).status_code == 401
    assert create(client, "sk_live_wrong", id=board, game_id=game).status_code == 403
    wrong_game = create(client, other_key, id=board, game_id=game)
    assert wrong_game.status_code == 403 and other in wrong_game.json()["detail"]
    made = create(
        client, key, id=board, game_id=game, reset_schedule="0 0 * * 1", metadata={"season": 3}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["sort_order"] == "desc" and body["operator"] == "best"
    assert body["metadata"] == {"season": 3}
    start = datetime.fromisoformat(body["current_period"]["start"])
    end = datetime.fromisoformat(body["current_period"]["end"])
    assert start.weekday() == 0 and end - start == timedelta(days=7)
    assert create(client, key, id=board, game_id=game).status_code == 409
    listed = client.get("/v1/leaderboards", params={"game_id": game}).json()
    assert [b["id"] for b in listed] == [board]


def test_a_bad_definition_gets_a_precise_422(client: TestClient) -> None:
    game, key = new_game()
    bad_cron = create(client, key, id="lb-bad-cron", game_id=game, reset_schedule="weekly")
    assert bad_cron.status_code == 422 and "5-field cron" in bad_cron.json()["detail"]
    bad_op = create(client, key, id="lb-bad-op", game_id=game, operator="max")
    assert bad_op.status_code == 422 and "operator" in bad_op.json()["detail"]
    nul = create(client, key, id="lb-nul", game_id=game, metadata={"a": "x\u0000y"})
    assert nul.status_code == 422 and "NUL" in nul.json()["detail"]


@pytest.mark.parametrize(
    ("raw_metadata", "fragment"),
    [
        ("[" * 900 + "]" * 900, "nested deeper than 16 levels"),
        ("NaN", "NaN or infinite"),
        ("1e400", "NaN or infinite"),
        ('"\\ud800"', "lone surrogate"),
    ],
    ids=["900-deep", "nan", "1e400", "lone-surrogate"],
)
def test_metadata_that_would_break_readers_is_refused_and_not_saved(
    client: TestClient, raw_metadata: str, fragment: str
) -> None:
    game, key = new_game()
    board = f"lb-{uuid.uuid4().hex[:8]}"
    body = f'{{"id": "{board}", "game_id": "{game}", "metadata": {{"x": {raw_metadata}}}}}'
    response = client.post(
        "/v1/leaderboards",
        content=body,
        headers={"X-Api-Key": key, "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]
    assert client.get("/v1/leaderboards", params={"game_id": game}).json() == []
    assert client.get("/v1/leaderboards").status_code == 200  # the public list still answers


def test_a_cron_that_never_fires_and_an_oversized_body_are_refused(client: TestClient) -> None:
    game, key = new_game()
    never = create(client, key, id="lb-never", game_id=game, reset_schedule="0 0 31 2 *")
    assert never.status_code == 422 and "never fires" in never.json()["detail"]
    huge = create(client, key, id="lb-huge", game_id=game, metadata={"x": "y" * 100_000})
    assert huge.status_code == 413 and huge.json()["code"] == "too_large"


def test_standings_rank_and_neighbours_are_public(client: TestClient, db_engine: Engine) -> None:
    game, key = new_game()
    board = f"lb-{uuid.uuid4().hex[:8]}"
    assert create(client, key, id=board, game_id=game, sort_order="asc").status_code == 201
    fill(db_engine, game, {f"p{i}": 100 + i for i in range(25)})  # asc: p0 is best

    page1 = client.get(f"/v1/leaderboards/{board}/records", params={"limit": 10}).json()
    page2 = client.get(
        f"/v1/leaderboards/{board}/records",
        params={"limit": 10, "cursor": page1["next_cursor"]},
    ).json()
    assert [r["owner_id"] for r in page1["records"]] == [f"p{i}" for i in range(10)]
    assert [r["rank"] for r in page2["records"]] == list(range(11, 21))

    rank = client.get(f"/v1/leaderboards/{board}/records/p17")
    assert rank.status_code == 200 and rank.json()["rank"] == 18 and rank.json()["score"] == 117
    around = client.get(f"/v1/leaderboards/{board}/records/p17/around", params={"limit": 1})
    assert [r["rank"] for r in around.json()] == [17, 18, 19]

    missing = client.get(f"/v1/leaderboards/{board}/records/nobody")
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
    bad_cursor = client.get(f"/v1/leaderboards/{board}/records", params={"cursor": "xyz"})
    assert bad_cursor.status_code == 400 and "next_cursor" in bad_cursor.json()["detail"]
    assert client.get("/v1/leaderboards/no-such-board/records").status_code == 404


def test_reset_over_http_archives_once_and_keeps_the_past_period(
    client: TestClient, db_engine: Engine
) -> None:
    game, key = new_game()
    board = f"lb-{uuid.uuid4().hex[:8]}"
    assert create(client, key, id=board, game_id=game).status_code == 201
    fill(db_engine, game, {"p1": 5, "p2": 9})
    url = f"/v1/leaderboards/{board}/reset"
    assert client.post(url).status_code == 401
    old_start = client.get(f"/v1/leaderboards/{board}").json()["current_period"]["start"]

    first = client.post(url, json={"period_start": old_start}, headers={"X-Api-Key": key})
    again = client.post(url, json={"period_start": old_start}, headers={"X-Api-Key": key})
    assert first.status_code == 200, first.text
    assert [datetime.fromisoformat(s) for s in first.json()["archived"]] == [
        datetime.fromisoformat(old_start)
    ]
    assert again.status_code == 200 and again.json()["archived"] == []

    assert client.get(f"/v1/leaderboards/{board}/records").json()["records"] == []
    past = client.get(f"/v1/leaderboards/{board}/records", params={"period_start": old_start})
    assert [r["owner_id"] for r in past.json()["records"]] == ["p2", "p1"]
    periods = client.get(f"/v1/leaderboards/{board}/periods").json()
    assert [(p["archived_at"] is None, p["records"]) for p in periods] == [(True, 0), (False, 2)]


def test_cli_creates_lists_shows_and_resets_idempotently(db_engine: Engine) -> None:
    game, _ = new_game()
    board = f"lb-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    made = runner.invoke(
        cli_app, ["leaderboards", "create", board, "--game", game, "--operator", "incr"]
    )
    assert made.exit_code == 0, made.output
    assert board in runner.invoke(cli_app, ["leaderboards", "list", "--game", game]).output
    fill(db_engine, game, {"alice": 3, "bob": 4})
    shown = runner.invoke(cli_app, ["leaderboards", "top", board])
    assert shown.exit_code == 0 and shown.output.index("bob") < shown.output.index("alice")

    first = runner.invoke(cli_app, ["leaderboards", "reset", board])
    second = runner.invoke(cli_app, ["leaderboards", "reset", board])
    assert first.exit_code == 0 and "archived the period" in first.output
    assert second.exit_code == 0 and "nothing to do" in second.output
    assert "alice" not in runner.invoke(cli_app, ["leaderboards", "top", board]).output

    unknown = runner.invoke(cli_app, ["leaderboards", "reset", "no-such-board"])
    assert unknown.exit_code == 1 and "no leaderboard" in unknown.output


def test_every_refusal_keeps_its_status_code_and_detail(
    client: TestClient, db_engine: Engine
) -> None:
    game, key = new_game()
    _, other_key = new_game()
    board, other_board = (f"lb-{uuid.uuid4().hex[:8]}" for _ in range(2))
    assert create(client, key, id=board, game_id=game).status_code == 201
    assert create(client, key, id=other_board, game_id=game).status_code == 201
    fill(db_engine, game, {"p1": 1, "p2": 2})
    url = f"/v1/leaderboards/{board}"
    never = {"period_start": "2001-01-01T00:00:00Z"}
    cursor = client.get(f"/v1/leaderboards/{other_board}/records", params={"limit": 1})
    assert cursor.status_code == 200

    def refused(response, status: int, code: str, detail: str) -> None:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["code"] == code and body["errors"] == [] and detail in body["detail"], body

    taken = create(client, key, id=board, game_id=game)
    refused(taken, 409, "conflict", f"leaderboard {board!r} already exists")
    for path in ("", "/periods", "/records", "/records/p1", "/records/p1/around"):
        missing = client.get(f"/v1/leaderboards/no-such-board{path}")
        refused(missing, 404, "not_found", "no leaderboard 'no-such-board'")
    for path in ("/records", "/records/p1", "/records/p1/around"):
        no_period = client.get(f"{url}{path}", params=never)
        refused(no_period, 404, "not_found", f"its periods are listed at GET {url}/periods")
    for path in ("/records/nobody", "/records/nobody/around"):
        no_record = client.get(f"{url}{path}")
        refused(no_record, 404, "not_found", f"'nobody' has no record in this period of {board!r}")
    bad_cursor = client.get(f"{url}/records", params={"cursor": "xyz"})
    refused(bad_cursor, 400, "bad_request", "pass next_cursor unchanged")
    foreign = client.get(f"{url}/records", params={"cursor": cursor.json()["next_cursor"]})
    refused(foreign, 400, "bad_request", f"cursor belongs to leaderboard {other_board!r}")

    headers = {"X-Api-Key": key}
    unknown = client.post("/v1/leaderboards/no-such-board/reset", headers=headers)
    refused(unknown, 404, "not_found", "no leaderboard 'no-such-board'")
    not_yours = client.post(f"{url}/reset", headers={"X-Api-Key": other_key})
    refused(not_yours, 403, "forbidden", f"leaderboard {board!r} belongs to game {game!r}")
    future = {"period_start": "2999-01-01T00:00:00Z"}
    early = client.post(f"{url}/reset", json=future, headers=headers)
    refused(early, 409, "conflict", "period 2999-01-01T00:00:00+00:00 has not started")


def test_cli_refusals_name_the_problem_and_exit_1(db_engine: Engine) -> None:
    game, _ = new_game()
    board = f"lb-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    assert runner.invoke(cli_app, ["leaderboards", "create", board, "--game", game]).exit_code == 0
    refusals = {
        ("create", board, "--game", game): "already exists",
        ("create", f"{board}-2", "--game", "no-such-game"): "register the game first",
        ("create", f"{board}-3", "--game", game, "--reset", "weekly"): "5-field cron",
        ("top", "no-such-board"): "no leaderboard",
        ("top", board, "--period", "2001-01-01"): "has no period starting at",
        ("periods", "no-such-board"): "no leaderboard",
        ("reset", board, "--period", "2999-01-01"): "has not started",
    }
    for args, message in refusals.items():
        result = runner.invoke(cli_app, ["leaderboards", *args])
        assert result.exit_code == 1 and message in " ".join(result.output.split()), (args, result)


def test_forged_cursors_and_periods_before_year_one_are_4xx(client: TestClient) -> None:
    import base64
    import json as _json

    game, key = new_game()
    board = f"lb-{uuid.uuid4().hex[:8]}"
    assert create(client, key, id=board, game_id=game).status_code == 201
    forged = {
        "lb": board,
        "ps": "0001-01-01T00:00:00+23:59",
        "pe": None,
        "k": 1,
        "r": "2026-01-01T00:00:00Z",
        "o": "p1",
        "n": 1,
    }
    cursor = base64.urlsafe_b64encode(_json.dumps(forged).encode()).decode().rstrip("=")
    page = client.get(f"/v1/leaderboards/{board}/records", params={"cursor": cursor})
    assert page.status_code == 400 and page.json()["code"] == "bad_request"
    period = client.get(
        f"/v1/leaderboards/{board}/records", params={"period_start": "0001-01-01T00:00:00+23:59"}
    )
    assert period.status_code == 404, period.text


def test_the_public_list_comes_a_page_at_a_time(client: TestClient) -> None:
    game, key = new_game()
    boards = sorted(f"lb-{uuid.uuid4().hex[:8]}" for _ in range(5))
    for board in boards:
        assert create(client, key, id=board, game_id=game).status_code == 201
    first = client.get("/v1/leaderboards", params={"game_id": game, "limit": 2})
    assert [b["id"] for b in first.json()] == boards[:2]
    rest = client.get("/v1/leaderboards", params={"game_id": game, "limit": 10, "after": boards[1]})
    assert [b["id"] for b in rest.json()] == boards[2:]
    assert len(client.get("/v1/leaderboards", params={"game_id": game}).json()) == 5
    too_many = client.get("/v1/leaderboards", params={"limit": 201})
    assert too_many.status_code == 422 and too_many.json()["detail"].startswith("limit: ")
    unknown = client.get("/v1/leaderboards", params={"after": "no-such-board"})
    assert unknown.status_code == 404


def test_a_game_has_at_most_a_hundred_leaderboards(
    client: TestClient, db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.leaderboards import definitions

    monkeypatch.setattr(definitions, "MAX_PER_GAME", 3)
    game, key = new_game()
    for n in range(3):
        assert create(client, key, id=f"cap-{game}-{n}", game_id=game).status_code == 201
    refused = create(client, key, id=f"cap-{game}-3", game_id=game)
    assert refused.status_code == 409
    assert refused.json()["code"] == "too_many_leaderboards"
    assert "has 3 leaderboards, the most a game may have (3)" in refused.json()["detail"]
    other, other_key = new_game()  # another game's count is its own
    assert create(client, other_key, id=f"cap-{other}-0", game_id=other).status_code == 201
