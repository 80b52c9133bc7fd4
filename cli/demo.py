"""``stride demo``: a synthetic game server posting events to the local stack, then the results.

It registers (or re-keys) a demo game with a best-score leaderboard, posts a realistic mix
of events at a fixed rate through ``POST /v1/events/batch``, waits until the worker has
applied them, and prints the top of the leaderboard and the reward commands by status. With
``--battles N`` it then queues 2N players for duels (``POST /v1/battles/tickets``), runs the
matcher until they are paired, waits for the battle engine and prints the best ratings.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from kafka import KafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import text

from cli.battles_cmd import run_pass
from core.identity.game_keys import GameExists, create_game, rotate_key
from core.leaderboards.definitions import create_leaderboard
from core.leaderboards.errors import LeaderboardExists
from core.leaderboards.reads import top
from core.leaderboards.rules import Operator
from core.platform.config import Settings, get_settings
from core.platform.db import get_engine, session_scope
from core.platform.kafka_security import kafka_python_options

console = Console()
TICK_S = 0.1


def synthetic_event(rng: random.Random, players: int) -> dict[str, Any]:
    """One plausible event from a game server."""
    player = f"player-{rng.randrange(players):04d}"
    roll = rng.random()
    if roll < 0.6:
        kind = "match_result"
        payload: dict[str, Any] = {
            "outcome": rng.choices(["win", "loss", "draw"], [45, 45, 10])[0],
            "score": rng.randint(0, 5000),
            "opponent": f"player-{rng.randrange(players):04d}",
        }
    elif roll < 0.8:
        kind, payload = "score", {"score": rng.randint(0, 8000), "level": f"L{rng.randint(1, 30)}"}
    elif roll < 0.9:
        kind = "purchase"
        payload = {
            "item": rng.choice(["sword", "shield", "skin", "boost"]),
            "price": f"{rng.randint(1, 500) / 10:.1f}",
            "currency": rng.choice(["STRIDE", "USD"]),
        }
    elif roll < 0.95:
        kind, payload = "achievement", {"achievement_id": "streak-5", "points": 10}
    else:
        kind, payload = "session_start", {"session_id": uuid.uuid4().hex[:12], "platform": "ios"}
    now = datetime.now(UTC).isoformat()
    return {
        "event_id": str(uuid.uuid4()),
        "player_id": player,
        "type": kind,
        "payload": payload,
        "occurred_at": now,
        "sent_at": now,
    }


def _demo_key(game_id: str) -> str:
    with session_scope() as session:
        try:
            return create_game(session, "Stride demo", game_id).api_key
        except GameExists:
            console.print(f"game [bold]{game_id}[/] exists: giving it a fresh key for this run")
    with session_scope() as session:
        return rotate_key(session, game_id).api_key


def _ensure_leaderboard(game_id: str) -> str:
    leaderboard_id = f"{game_id}-best"
    try:
        with get_engine().begin() as conn:
            create_leaderboard(
                conn, leaderboard_id=leaderboard_id, game_id=game_id, operator=Operator.best
            )
    except LeaderboardExists:
        pass
    return leaderboard_id


def _applied(game_id: str) -> int:
    with get_engine().connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM processed_events WHERE game_id = :g"), {"g": game_id}
        ).scalar_one()


RETRY_FOR_S = 120.0  # how long the synthetic server keeps retrying a refused batch


def _post_until_accepted(
    client: httpx.Client, key: str, events: list[dict], bar: Progress
) -> httpx.Response:
    """POST a batch; on 503 wait ``Retry-After`` and send it again unchanged, as the API
    asks (its event ids make the retry safe), for up to ``RETRY_FOR_S``."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            response = client.post(
                "/v1/events/batch", json={"events": events}, headers={"X-Api-Key": key}
            )
        except httpx.TransportError as exc:
            if time.monotonic() > deadline:
                raise
            bar.console.print(f"[yellow]API unreachable ({exc!r}); retrying[/]")
            time.sleep(1.0)  # back-off before retrying the same batch
            continue
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        wait = float(response.headers.get("Retry-After", "1") or 1)
        bar.console.print(
            f"[yellow]503 ({response.json().get('detail', '')[:60]}...); "
            f"retrying the same batch in {wait:.0f}s[/]"
        )
        time.sleep(wait)  # the server's Retry-After


def demo(
    rate: Annotated[int, typer.Option(min=1, max=50_000, help="Events per second.")] = 200,
    duration: Annotated[float, typer.Option(min=0.5, max=3600, help="Seconds to run.")] = 10,
    players: Annotated[int, typer.Option(min=1, help="Distinct players.")] = 50,
    game_id: Annotated[str, typer.Option(help="Game id of the demo game.")] = "stride-demo",
    seed: Annotated[int | None, typer.Option(help="Random seed, for a repeatable run.")] = None,
    top_n: Annotated[int, typer.Option(min=1, max=100, help="Leaderboard rows to show.")] = 10,
    battles: Annotated[
        int,
        typer.Option(min=0, max=10_000, help="Then matchmake this many duels and show ratings."),
    ] = 0,
    web3: Annotated[
        bool,
        typer.Option(
            "--web3",
            help="Instead: the app's write flows (stake and claim, list and buy, bridge) with "
            "local test wallets, printing each transaction and the balances.",
        ),
    ] = False,
) -> None:
    """Run a synthetic game server against the local stack (`stride up` first)."""
    settings = get_settings()
    try:
        httpx.get(f"{settings.api_url}/health", timeout=2).raise_for_status()
    except httpx.HTTPError:
        console.print(f"[bold red]error:[/] no API at {settings.api_url}; run `stride up` first")
        raise typer.Exit(1) from None
    if web3:
        from cli.demo_web3 import DemoError, run_web3_demo

        try:
            run_web3_demo(settings, console)
        except DemoError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None
        return
    key = _demo_key(game_id)
    leaderboard_id = _ensure_leaderboard(game_id)
    applied_before = _applied(game_id)
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    total = int(rate * duration)
    accepted = rejected = 0
    columns = (
        TextColumn("[bold]posting events"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("accepted {task.fields[accepted]} rejected {task.fields[rejected]}"),
        TimeRemainingColumn(),
    )
    with httpx.Client(base_url=settings.api_url, timeout=30) as client, Progress(*columns) as bar:
        task = bar.add_task("post", total=total, accepted=0, rejected=0)
        started = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                size = min(due - sent, 1000)
                events = [synthetic_event(rng, players) for _ in range(size)]
                response = _post_until_accepted(client, key, events, bar)
                if response.status_code != 202:
                    bar.stop()
                    console.print(f"[bold red]error:[/] {response.status_code} {response.text}")
                    raise typer.Exit(1)
                body = response.json()
                accepted += body["accepted"]
                rejected += len(body["rejected"])
                sent += size
                bar.update(task, completed=sent, accepted=accepted, rejected=rejected)
            time.sleep(TICK_S)  # pacing of the synthetic server, not a wait for a result
    elapsed = time.monotonic() - started
    console.print(f"posted {sent} events in {elapsed:.1f}s ({sent / elapsed:,.0f}/s)")

    target = applied_before + accepted
    with console.status("waiting for the worker to apply them...") as status:
        deadline = time.monotonic() + 120
        while (applied := _applied(game_id)) < target and time.monotonic() < deadline:
            status.update(f"waiting for the worker: {applied - applied_before}/{accepted} applied")
            time.sleep(0.2)
    if applied < target:
        console.print(
            f"[yellow]only {applied - applied_before} of {accepted} applied after 120s; "
            "is the worker running? (`stride status worker`)[/]"
        )
    _print_results(leaderboard_id, game_id, top_n)
    if battles:
        run_battles(settings, key, game_id, battles, rng, top_n)


def run_battles(
    settings: Settings, key: str, game_id: str, count: int, rng: random.Random, top_n: int
) -> None:
    """Queue ``2 * count`` players for duels through the API, run the matcher until they
    are all matched, wait for the engine, and show the best ratings."""
    headers = {"X-Api-Key": key}
    run = uuid.uuid4().hex[:6]
    players = [f"duelist-{run}-{i}" for i in range(2 * count)]
    rng.shuffle(players)
    with httpx.Client(base_url=settings.api_url, timeout=30) as client:
        for player in players:
            response = client.post(
                "/v1/battles/tickets", json={"player_id": player, "mode": "duel"}, headers=headers
            )
            if response.status_code != 201:
                console.print(f"[bold red]error:[/] {response.status_code} {response.text}")
                raise typer.Exit(1)
    engine = get_engine()
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    queued = 0
    try:
        with console.status("matchmaking...") as status:
            deadline = time.monotonic() + 120
            while queued < count and time.monotonic() < deadline:
                queued += run_pass(engine, producer, game_id, "duel", settings)[0]
                status.update(f"matchmaking: {queued}/{count} duels queued")
                time.sleep(settings.battles_match_interval_s)  # the matcher's own pacing
    finally:
        producer.close()
    with console.status("waiting for the battle engine...") as status:
        deadline = time.monotonic() + 120
        while (done := _resolved_duels(game_id, run)) < queued and time.monotonic() < deadline:
            status.update(f"waiting for the battle engine: {done}/{queued} resolved")
            time.sleep(0.2)
    console.print(f"{queued} duels matched, {done} resolved and rated")
    with get_engine().connect() as conn:
        best = conn.execute(
            text(
                "SELECT player_id, mu, sigma, wins, losses FROM players WHERE game_id = :g"
                " ORDER BY mu - 3 * sigma DESC LIMIT :n"
            ),
            {"g": game_id, "n": top_n},
        ).all()
    table = Table(title="best battle ratings (mu - 3 sigma)")
    for column in ("player", "mu", "sigma", "wins", "losses"):
        table.add_column(column)
    for row in best:
        table.add_row(
            row.player_id, f"{row.mu:.2f}", f"{row.sigma:.2f}", str(row.wins), str(row.losses)
        )
    console.print(table)


def _resolved_duels(game_id: str, run: str) -> int:
    with get_engine().connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM battles WHERE game_id = :g AND status = 'resolved'"
                " AND sides->0->>0 LIKE :run"
            ),
            {"g": game_id, "run": f"duelist-{run}-%"},
        ).scalar_one()


def _print_results(leaderboard_id: str, game_id: str, top_n: int) -> None:
    with get_engine().connect() as conn:
        standings = top(conn, leaderboard_id, limit=top_n)
        latest = conn.execute(
            text(
                "SELECT action, status, player_id, amount, token, reason, command_id"
                " FROM reward_commands WHERE game_id = :g ORDER BY issued_at DESC LIMIT 10"
            ),
            {"g": game_id},
        ).all()
        counts = conn.execute(
            text(
                "SELECT action || ' ' || status, count(*), coalesce(sum(amount), 0)"
                " FROM reward_commands WHERE game_id = :g GROUP BY action, status ORDER BY 1"
            ),
            {"g": game_id},
        ).all()
    board = Table(title=f"leaderboard {leaderboard_id} (best score)")
    for column in ("rank", "player", "score"):
        board.add_column(column, justify="right" if column != "player" else "left")
    for record in standings.records:
        board.add_row(str(record.rank), record.owner_id, f"{record.score:,}")
    console.print(board)
    summary = ", ".join(f"{n} {action} ({amount:,.2f} STRIDE)" for action, n, amount in counts)
    commands = Table(
        title=f"reward commands: {summary or 'none'} - latest 10"
        " (stride rewards list: every status and its reason)"
    )
    for column in ("action", "status", "player", "amount", "earned for", "command id"):
        commands.add_column(column)
    for row in latest:
        commands.add_row(
            row.action,
            row.status,
            row.player_id,
            f"{row.amount:,.2f} {row.token}",
            row.reason,
            str(row.command_id),
        )
    console.print(commands)
