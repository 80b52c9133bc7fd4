"""Helpers of the admin screens' tests: games, leaderboards with scores, and the cells of an
HTML table read with the standard library's parser."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser

from sqlalchemy.engine import Engine

from core.identity.game_keys import create_game
from core.leaderboards import definitions, writer
from core.leaderboards.rules import ScoreSubmission
from core.platform.db import session_scope


def new_game(name: str | None = None) -> str:
    game_id = f"g-{uuid.uuid4().hex[:10]}"
    with session_scope() as session:
        create_game(session, name or f"Game {game_id}", game_id)
    return game_id


def new_board(engine: Engine, game_id: str, **options: object) -> str:
    board = f"lb-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        definitions.create_leaderboard(conn, leaderboard_id=board, game_id=game_id, **options)  # type: ignore[arg-type]
    return board


def submit(engine: Engine, game_id: str, scores: list[tuple[str, int, datetime]]) -> None:
    """Scores through the leaderboard writer, as the scoring agent submits them."""
    with engine.begin() as conn:
        writer.submit_scores(
            conn,
            [
                ScoreSubmission(game_id, owner, score, uuid.uuid4(), at)
                for owner, score, at in scores
            ],
        )


def now() -> datetime:
    return datetime.now(UTC)


class _Tables(HTMLParser):
    """Rows of ``<tbody>`` of the table with id ``table_id``: each cell's text, stripped."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.depth = 0  # tables open inside the one wanted (0: not in it)
        self.in_body = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or dict(attrs).get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tbody":
            self.in_body = True
        elif self.depth and self.in_body and tag == "tr":
            self.rows.append([])
        elif self.depth and self.in_body and tag == "td":
            self.cell = []
        elif self.depth and self.in_body and tag == "a" and (href := dict(attrs).get("href")):
            self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif tag == "tbody":
            self.in_body = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(html: str, table_id: str) -> list[list[str]]:
    parser = _Tables(table_id)
    parser.feed(html)
    return parser.rows


def table_links(html: str, table_id: str) -> list[str]:
    parser = _Tables(table_id)
    parser.feed(html)
    return parser.links
