"""``stride battles``: run the matchmaker (one queue, or every queue as the ``matcher``
service of ``stride up``), show a battle or a player's battle profile."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from kafka import KafkaProducer
from rich.console import Console
from sqlalchemy.engine import Engine

from core.battles import matchmaking, profiles
from core.battles.contracts import BattleRequest
from core.battles.store import BattleNotFound, get_battle
from core.platform.config import BattleSettings, get_settings
from core.platform.db import engine_for, session_scope
from core.platform.kafka_security import kafka_python_options
from core.platform.topics import BATTLE_REQUESTS

battles_app = typer.Typer(help="Battles: matchmaking, results, profiles.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
REPUBLISH_AFTER_S = 10.0  # a matched battle still queued this long was never published


def _publish(producer: KafkaProducer, requests: list[BattleRequest]) -> None:
    futures = [
        producer.send(BATTLE_REQUESTS, key=r.record_key(), value=r.model_dump_json().encode())
        for r in requests
    ]
    for future in futures:
        future.get(timeout=30)


def run_pass(
    engine: Engine, producer: KafkaProducer, game_id: str, mode: str, settings: BattleSettings
) -> tuple[int, int, int]:
    """One matcher pass, its battles produced: (battles queued, tickets expired, battles
    republished)."""
    now = datetime.now(UTC)
    outcome = matchmaking.match_pass(engine, game_id, mode, settings, now=now)
    stuck = matchmaking.unpublished(engine, game_id, now - timedelta(seconds=REPUBLISH_AFTER_S))
    _publish(producer, outcome.battles + stuck)
    return len(outcome.battles), outcome.expired, len(stuck)


@battles_app.command("match")
def match(
    game_id: Annotated[str, typer.Argument(help="The game id.")],
    mode: Annotated[str, typer.Argument(help="The mode whose queue to match, e.g. duel.")],
    once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
) -> None:
    """Pair waiting players by rating and queue their battles (Ctrl-C stops).

    Several matchers may run at once: each pass locks the tickets it takes (SKIP LOCKED)."""
    settings = get_settings()
    engine = engine_for(settings.db_url)
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    try:
        while True:
            queued, expired, stuck = run_pass(engine, producer, game_id, mode, settings)
            if queued or expired or stuck:
                console.print(
                    f"{queued} battles queued, {expired} tickets expired, {stuck} republished"
                )
            if once:
                return
            time.sleep(settings.battles_match_interval_s)  # the queue is polled, by design
    except KeyboardInterrupt:
        pass
    finally:
        producer.close()


def serve_all(
    engine: Engine,
    producer: KafkaProducer,
    settings: BattleSettings,
    stop: Callable[[], bool],
    on_round: Callable[[], None] = lambda: None,
) -> None:
    """The matcher of every game and mode (``stride up matcher``): each round, one pass per
    queue holding a waiting ticket, the battles produced, stuck ones republished; then
    ``on_round`` (the readiness file) and the poll interval. Runs until ``stop()``."""
    while not stop():
        now = datetime.now(UTC)
        for game_id, mode in matchmaking.waiting_queues(engine):
            outcome = matchmaking.match_pass(engine, game_id, mode, settings, now=now)
            _publish(producer, outcome.battles)
            if outcome.battles or outcome.expired:
                console.print(
                    f"{game_id}/{mode}: {len(outcome.battles)} battles queued, "
                    f"{outcome.expired} tickets expired"
                )
        stuck = matchmaking.unpublished(engine, None, now - timedelta(seconds=REPUBLISH_AFTER_S))
        _publish(producer, stuck)
        if stuck:
            console.print(f"{len(stuck)} matched battles republished")
        on_round()
        time.sleep(settings.battles_match_interval_s)  # the queues are polled, by design


@battles_app.command("serve")
def serve(
    ready_file: Annotated[
        Path | None,
        typer.Option(help="Written after the first round (the supervisor's readiness probe)."),
    ] = None,
) -> None:
    """Match every game's and mode's queue until stopped (SIGTERM or Ctrl-C): the
    `matcher` service of `stride up`. Safe beside other matchers (SKIP LOCKED)."""
    settings = get_settings()
    engine = engine_for(settings.db_url, pool_size=2)
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    def ready() -> None:
        if ready_file is not None and not ready_file.exists():
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            ready_file.write_text(datetime.now(UTC).isoformat() + "\n")

    try:
        serve_all(engine, producer, settings, stopping.is_set, ready)
    except KeyboardInterrupt:
        pass
    finally:
        producer.close()


@battles_app.command("show")
def show(
    game_id: Annotated[str, typer.Argument(help="The game id.")],
    battle_id: Annotated[str, typer.Argument(help="The battle id (a UUID).")],
) -> None:
    """A battle: its status, ranks, seed and rating changes."""
    try:
        with session_scope() as session:
            battle = get_battle(session, game_id, uuid.UUID(battle_id))
    except (BattleNotFound, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"battle {battle.battle_id} ({battle.mode}): [bold]{battle.status}[/]")
    if battle.reason:
        console.print(f"reason: {battle.reason}")
    for index, side in enumerate(battle.sides):
        rank = battle.ranks[index] if battle.ranks else "-"
        console.print(f"  side {index + 1}: {', '.join(side)}  rank {rank}")
    for change in battle.rating_changes:
        console.print(f"  {change.player_id}: mu {change.mu_before:.2f} -> {change.mu_after:.2f}")
    if battle.seed is not None:
        console.print(f"seed {battle.seed}, engine version {battle.engine_version}")


@battles_app.command("player")
def player(
    game_id: Annotated[str, typer.Argument(help="The game id.")],
    player_id: Annotated[str, typer.Argument(help="The game's player id.")],
) -> None:
    """A player's battle profile: rating and record."""
    try:
        with session_scope() as session:
            profile = profiles.show_player(session, game_id, player_id)
    except profiles.PlayerNotFound as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    state = "active" if profile.is_active else "deactivated"
    console.print(
        f"{profile.display_name} ({profile.player_id}, {state}): mu {profile.mu:.2f},"
        f" sigma {profile.sigma:.2f}; {profile.battles} battles, {profile.wins} wins,"
        f" {profile.losses} losses"
    )
