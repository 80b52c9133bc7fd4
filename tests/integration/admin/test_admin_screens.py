"""The admin panel's own screens against the real PostgreSQL (and Apache Kafka): the
standings of a leaderboard period, ranked exactly as the public API ranks them, and the
home page's figures."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.admin.home import day_start
from core.leaderboards import definitions
from core.platform.config import Settings, get_settings
from core.platform.messages import DeadLetter
from core.platform.topics import GAME_EVENTS, GAME_EVENTS_DLQ, ensure_topics
from tests.admin_screens import new_board, new_game, now, submit, table_links, table_rows


def api_rows(client: TestClient, board: str, **params: str) -> list[list[str]]:
    """The public API's standings as the screen shows them: rank, player, score."""
    answer = client.get(f"/v1/leaderboards/{board}/records", params={"limit": 1000, **params})
    assert answer.status_code == 200, answer.text
    return [[f"{r['rank']:,}", r["owner_id"], f"{r['score']:,}"] for r in answer.json()["records"]]


def visible(html: str) -> str:
    """The page's text as a reader sees it (no tags, attributes or scripts)."""
    return " ".join(unescape(re.sub(r"<script.*?</script>|<[^>]+>", " ", html, flags=re.S)).split())


def link(html: str, element_id: str) -> str | None:
    found = re.search(rf'href="([^"]+)"\s+id="{element_id}"', html)
    return unescape(found.group(1)) if found else None


def options(html: str, select_id: str) -> list[str]:
    block = re.search(rf'<select[^>]*id="{select_id}".*?</select>', html, re.S)
    assert block, f"no select #{select_id}"
    return [
        " ".join(unescape(o).split())
        for o in re.findall(r"<option[^>]*>(.*?)</option>", block.group(0), re.S)
    ]


# ---- standings -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tied_board(db_engine: Engine) -> tuple[str, str]:
    """70 players on 7 scores: ties at the same moment (owner id decides) and at different
    moments (the score reached first wins)."""
    game = new_game("Tri Arena Standings")
    board = new_board(db_engine, game)
    start = now() - timedelta(hours=1)
    submit(
        db_engine,
        game,
        [
            (f"player-{i:04d}", 7_000 + (i % 7) * 100, start + timedelta(seconds=(i * 5) % 3))
            for i in range(70)
        ],
    )
    return game, board


def test_standings_ranks_are_the_apis_ranks_with_ties_page_after_page(
    viewer: TestClient, tied_board: tuple[str, str]
) -> None:
    game, board = tied_board
    expected = api_rows(viewer, board)
    assert len(expected) == 70

    first = viewer.get("/admin/standings", params={"leaderboard_id": board})
    assert first.status_code == 200, first.text
    assert [row[:3] for row in table_rows(first.text, "standings-table")] == expected[:50]
    assert "Tri Arena Standings" in first.text and f"({game})" in first.text
    # The internals stay hidden: no 1970 start of an all-time board, no sort keys.
    shown = visible(first.text)
    assert "1970" not in shown and "-7,600" not in shown and "-7600" not in shown
    assert "9223372036854775808" not in shown
    assert "All time (current)" in options(first.text, "period")[0]
    assert "Ranks 1 to 50 of 70" in shown
    assert table_links(first.text, "standings-table")[0] == (
        f"http://testserver/admin/player-totals/list?search={expected[0][1]}"
    )

    next_url = link(first.text, "standings-next")
    assert next_url is not None
    second = viewer.get(next_url)
    assert second.status_code == 200
    assert [row[:3] for row in table_rows(second.text, "standings-table")] == expected[50:]
    assert link(second.text, "standings-next") is None
    assert link(second.text, "standings-first") is not None


def test_a_player_search_jumps_to_the_players_rank(
    viewer: TestClient, tied_board: tuple[str, str]
) -> None:
    _, board = tied_board
    api_rank = viewer.get(f"/v1/leaderboards/{board}/records/player-0033").json()["rank"]
    found = viewer.get(
        "/admin/standings", params={"leaderboard_id": board, "player": "player-0033"}
    )
    assert found.status_code == 200
    highlighted = re.search(r'id="standings-found">\s*<td[^>]*>([\d,]+)</td>', found.text)
    assert highlighted and highlighted.group(1) == f"{api_rank:,}"
    rows = table_rows(found.text, "standings-table")
    expected = api_rows(viewer, board)
    assert [r[:3] for r in rows] == expected[max(0, api_rank - 11) : api_rank + 10]

    missing = viewer.get("/admin/standings", params={"leaderboard_id": board, "player": "nobody-1"})
    assert missing.status_code == 200
    assert "has no score in this period" in missing.text
    bad = viewer.get("/admin/standings", params={"leaderboard_id": board, "player": "a b"})
    assert bad.status_code == 400 and "is not a player id" in bad.text


def test_the_period_picker_lists_past_periods_with_dates_and_shows_their_ranks(
    viewer: TestClient, db_engine: Engine
) -> None:
    game = new_game()
    board = new_board(db_engine, game)
    submit(db_engine, game, [("old-a", 50, now() - timedelta(minutes=5)), ("old-b", 50, now())])
    with db_engine.begin() as conn:
        reset = definitions.reset_leaderboard(conn, board)
    new_start = reset.current_start
    submit(db_engine, game, [("new-a", 10, new_start + timedelta(seconds=1))])

    current = viewer.get("/admin/standings", params={"leaderboard_id": board})
    assert current.status_code == 200
    assert [r[1] for r in table_rows(current.text, "standings-table")] == ["new-a"]
    human_start = f"{new_start:%-d %b %Y %H:%M:%S} UTC"
    assert options(current.text, "period") == [
        f"From {human_start} (current) · 1 player",
        f"All time, until {human_start} · 2 players",
    ]

    for period in ("1970-01-01", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"):
        past = viewer.get("/admin/standings", params={"leaderboard_id": board, "period": period})
        assert past.status_code == 200, past.text
        assert table_rows(past.text, "standings-table") and [
            r[:3] for r in table_rows(past.text, "standings-table")
        ] == api_rows(viewer, board, period_start="1970-01-01T00:00:00Z")
        assert "1970" not in visible(past.text)
    # A "+" typed into a URL arrives as a space.
    spaced = viewer.get(f"/admin/standings?leaderboard_id={board}&period=1970-01-01T00:00:00+00:00")
    assert spaced.status_code == 200 and "old-a" in spaced.text
    named_current = viewer.get(
        "/admin/standings", params={"leaderboard_id": board, "period": new_start.isoformat()}
    )
    assert [r[1] for r in table_rows(named_current.text, "standings-table")] == ["new-a"]

    unknown = viewer.get(
        "/admin/standings", params={"leaderboard_id": board, "period": "2001-01-01"}
    )
    assert unknown.status_code == 404 and "has no period starting 1 Jan 2001" in unknown.text
    assert options(unknown.text, "period")  # the picker is still there to recover
    garbage = viewer.get(
        "/admin/standings", params={"leaderboard_id": board, "period": "last week"}
    )
    assert garbage.status_code == 400 and "is not a date or time" in garbage.text


def test_an_empty_board_and_unknown_boards_say_so(viewer: TestClient, db_engine: Engine) -> None:
    game = new_game()
    board = new_board(db_engine, game, reset_schedule="0 0 * * 1")
    empty = viewer.get("/admin/standings", params={"leaderboard_id": board})
    assert empty.status_code == 200
    assert 'id="standings-empty"' in empty.text and "No scores yet" in empty.text
    assert "resets every Monday at 00:00 UTC" in empty.text
    assert " (current) · 0 players" in options(empty.text, "period")[0]

    unknown = viewer.get("/admin/standings", params={"leaderboard_id": "no-such-board"})
    assert unknown.status_code == 404 and "There is no leaderboard" in unknown.text
    bad = viewer.get("/admin/standings", params={"leaderboard_id": "Not A Slug"})
    assert bad.status_code == 400 and "is not a leaderboard id" in bad.text
    picker = viewer.get("/admin/standings")
    assert picker.status_code == 200 and "Pick a leaderboard" in picker.text
    assert any(
        o.startswith(f"{board} — Game {game}") for o in options(picker.text, "leaderboard_id")
    )
    stale = viewer.get("/admin/standings", params={"leaderboard_id": board, "cursor": "xyz"})
    assert stale.status_code == 400 and "out of date" in stale.text


def test_the_standings_need_a_signed_in_admin(app) -> None:
    with TestClient(app) as anonymous:
        answer = anonymous.get("/admin/standings", follow_redirects=False)
    assert answer.status_code in (302, 303) and answer.headers["location"].endswith("/admin/login")


# ---- home page -----------------------------------------------------------------------------


def number(html: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}">([\d,]+)<', html)
    assert found, f"no #{element_id}"
    return int(found.group(1).replace(",", ""))


def insert_event(conn, game_id: str, player: str, occurred_at: datetime) -> None:
    conn.execute(
        text(
            "INSERT INTO processed_events (game_id, event_id, player_id, type, payload,"
            " occurred_at, client_occurred_at, received_at, source_partition, source_offset)"
            " VALUES (:g, :e, :p, 'score', '{}', :t, :t, :t, 0, 0)"
        ),
        {"g": game_id, "e": uuid.uuid4(), "p": player, "t": occurred_at},
    )


def insert_totals(conn, game_id: str, player: str, last_event_at: datetime) -> None:
    conn.execute(
        text(
            "INSERT INTO player_totals (game_id, player_id, first_event_at, last_event_at)"
            " VALUES (:g, :p, :t, :t)"
        ),
        {"g": game_id, "p": player, "t": last_event_at},
    )


def insert_command(conn, status: str, token: str, amount: str) -> None:
    conn.execute(
        text(
            "INSERT INTO reward_commands (command_id, source_event_id, action, status, game_id,"
            " player_id, token, amount, reason, issued_at)"
            " VALUES (:c, :e, 'mint', :s, 'g', 'p', :t, :a, 'test', now() - interval '1 hour')"
        ),
        {"c": uuid.uuid4(), "e": uuid.uuid4(), "s": status, "t": token, "a": Decimal(amount)},
    )


def test_the_home_page_counts_todays_events_active_players_and_open_rewards(
    viewer: TestClient, db_engine: Engine
) -> None:
    before = viewer.get("/admin/")
    assert before.status_code == 200
    players_today, players_week = (
        number(before.text, "players-today"),
        number(before.text, "players-week"),
    )

    busy, quiet = new_game("Busy Game"), new_game("Quiet Game")
    token = f"Z{uuid.uuid4().hex[:5].upper()}"
    moment = now()
    today = day_start(moment)
    with db_engine.begin() as conn:
        for i in range(3):
            insert_event(conn, busy, f"p{i}", max(today, moment - timedelta(seconds=i + 1)))
        insert_event(conn, busy, "p0", today - timedelta(microseconds=1))  # yesterday
        insert_event(conn, quiet, "p0", today - timedelta(days=2))
        insert_totals(conn, busy, f"today-{token}-1", moment)
        insert_totals(conn, quiet, f"today-{token}-2", moment)
        insert_totals(conn, busy, f"week-{token}", today - timedelta(days=6))
        insert_totals(conn, busy, f"old-{token}", today - timedelta(days=7, seconds=1))
        insert_command(conn, "pending", token, "1.5")
        insert_command(conn, "pending", token, "2.250000000000000000")
        insert_command(conn, "failed", token, "10.000000000000000000")
        insert_command(conn, "confirmed", token, "99")

    page = viewer.get("/admin/")
    assert page.status_code == 200
    html = page.text
    events = {r[0]: r[1] for r in table_rows(html, "table-events")}
    assert events[f"Busy Game ({busy})"] == "3"
    assert events[f"Quiet Game ({quiet})"] == "0"
    assert f"{today:%-d %b %Y}, UTC" in html
    events_link = next(u for u in table_links(html, "table-events") if f"game_id={busy}" in u)
    assert "/admin/processed-events/list?" in events_link
    assert "game_id_op=equals" in events_link and "occurred_at_op=greater_than" in events_link

    assert number(html, "players-today") - players_today == 2
    assert number(html, "players-week") - players_week == 3

    rewards = {r[0]: r[1:4] for r in table_rows(html, "table-rewards") if token in r[2]}
    assert rewards == {
        "waiting (pending)": ["2", f"3.75 {token}", rewards["waiting (pending)"][2]],
        "failed": ["1", f"10 {token}", rewards["failed"][2]],
    }
    failed_link = (
        f"http://testserver/admin/reward-commands/list?status=failed&token={token}&token_op=equals"
    )
    assert failed_link in [unescape(u) for u in table_links(html, "table-rewards")]
    # The tables are still listed below the dashboard, with the role summary above.
    assert 'id="table-index"' in html and "You are a <strong>viewer</strong>" in html


def dead_letter_row(html: str, topic: str) -> list[str]:
    return next(r for r in table_rows(html, "table-dead-letters") if r[0] == topic)


def test_the_home_page_shows_dead_letters_per_topic_with_the_latest_reasons(
    viewer: TestClient, kafka: Settings
) -> None:
    ensure_topics(kafka)
    before = dead_letter_row(viewer.get("/admin/").text, GAME_EVENTS_DLQ)
    tag = uuid.uuid4().hex[:8]
    producer = KafkaProducer(bootstrap_servers=kafka.kafka_bootstrap, acks="all")
    try:
        for i in range(3):
            letter = DeadLetter.of(
                f"payload.score: not an integer <b>({tag}-{i})</b>",
                topic=GAME_EVENTS,
                partition=i,
                offset=100 + i,
                key=b"player-1",
                value=b'{"bad": true}',
                failed_at=datetime.now(UTC),
            )
            producer.send(GAME_EVENTS_DLQ, key=b"player-1", value=letter.model_dump_json().encode())
        producer.flush(timeout=10)
    finally:
        producer.close()

    html = viewer.get("/admin/").text
    after = dead_letter_row(html, GAME_EVENTS_DLQ)
    count = lambda row, i: int(row[i].replace(",", ""))  # noqa: E731
    assert count(after, 1) - count(before, 1) == 3  # today
    assert count(after, 2) - count(before, 2) == 3  # in the topic
    for i in range(3):  # the reasons as text: markup in a bad message is shown, not run
        assert f"payload.score: not an integer <b>({tag}-{i})</b>" in after[3]
        assert f"payload.score: not an integer &lt;b&gt;({tag}-{i})&lt;/b&gt;" in html
    assert f"{GAME_EVENTS}, partition 2, offset 102" in after[3]
    assert "Kafka is unreachable" not in html


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung broker)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"127.0.0.1:{server.getsockname()[1]}"


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("broker", ["closed", "silent"])
def test_the_home_page_renders_when_kafka_is_down(
    viewer: TestClient, query_settings: pytest.MonkeyPatch, silent_broker: str, broker: str
) -> None:
    new_game()  # the events table is shown once a game exists, whatever ran before
    bootstrap = silent_broker if broker == "silent" else closed_port()
    query_settings.setenv("STRIDE_KAFKA_BOOTSTRAP", bootstrap)
    get_settings.cache_clear()
    page = viewer.get("/admin/")
    assert page.status_code == 200
    assert "Kafka is unreachable at the moment" in page.text and bootstrap in page.text
    assert 'id="table-events"' in page.text and 'id="players-today"' in page.text
