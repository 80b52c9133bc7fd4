"""The standings screen of the admin panel (``/admin/standings``): one leaderboard period as
its players see it, for operations staff.

Ranks come from ``core.leaderboards.reads`` (the same keyset pages and rank blocks as the
public API and the CLI), so a rank and its tie order here are the API's, and a page of a
million-record board costs one index range. The internals of the tables stay hidden: no
``sort_key``, no rank blocks, no 1970 start for a board that never resets ("All time").

URL contract (other admin pages link to it): ``/admin/standings?leaderboard_id=<id>`` with
optional ``&period=<start of the period, ISO date or datetime>`` (default: the current one),
``&player=<player id>`` (jump to the player's rank) and ``&cursor=`` (next page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import anyio
from sqladmin import BaseView, expose
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from api.admin.listing import stopped_statements_explained
from core.events.models import Game
from core.identity.ids import PLAYER_ID_PATTERN
from core.leaderboards import definitions, reads
from core.leaderboards.errors import LeaderboardError
from core.leaderboards.rules import EPOCH, LEADERBOARD_ID_PATTERN, Operator, SortOrder
from core.platform.errors import NotFound

PAGE_SIZE = 50
AROUND = 10  # records shown either side of a player found by the search
MAX_PARAM_LENGTH = 2048

OPERATOR_TEXT = {
    Operator.best: "each player's best score counts",
    Operator.set: "each player's latest score counts",
    Operator.incr: "each player's scores add up",
    Operator.decr: "each player's scores are taken away (never below 0)",
}
ORDER_TEXT = {SortOrder.desc: "higher is better", SortOrder.asc: "lower is better"}
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


class StandingsRequestError(ValueError):
    """A parameter of the standings URL that is not valid; the message says what to do."""


# ---- pure: parameters and labels -----------------------------------------------------------


def parse_period(raw: str) -> datetime:
    """The period start of a URL: an ISO date (midnight UTC) or datetime (UTC if no offset).

    A ``+`` of an offset typed into a URL arrives as a space; it is read back as ``+``.
    """
    text = raw.strip()
    if re.fullmatch(r".*\d \d{2}(:?\d{2})?", text) and "T" in text:
        head, _, offset = text.rpartition(" ")
        text = f"{head}+{offset}"
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise StandingsRequestError(
            f"period {raw[:64]!r} is not a date or time: pick a period from the list, or"
            " write its start as 2026-11-30 or 2026-11-30T00:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def period_param(start: datetime) -> str:
    """A period start as the ``period`` URL parameter (UTC, ``Z``: nothing to escape)."""
    return start.astimezone(UTC).isoformat().replace("+00:00", "Z")


def human_time(moment: datetime) -> str:
    """``30 Nov 2026 14:05 UTC`` (seconds only when there are some)."""
    moment = moment.astimezone(UTC)
    pattern = "%-d %b %Y %H:%M:%S" if moment.second or moment.microsecond else "%-d %b %Y %H:%M"
    return f"{moment:{pattern}} UTC"


def human_day_or_time(moment: datetime) -> str:
    """A period bound: ``30 Nov 2026`` at midnight UTC, else the time too."""
    moment = moment.astimezone(UTC)
    if moment.time() == datetime.min.time():
        return f"{moment:%-d %b %Y}"
    return human_time(moment)


def period_label(start: datetime, end: datetime | None) -> str:
    """How a period reads to people: "All time", "30 Nov 2026 to 6 Dec 2026" (whole UTC days,
    the last one included), "1 Dec 2026" (one day), "From 1 Dec 2026 14:05 UTC"."""
    if start == EPOCH:
        return "All time" if end is None else f"All time, until {human_day_or_time(end)}"
    if end is None:
        return f"From {human_day_or_time(start)}"
    midnight = datetime.min.time()
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start.time() == midnight and end.time() == midnight:
        last_day = end - timedelta(days=1)
        if last_day.date() <= start.date():
            return f"{start:%-d %b %Y}"
        return f"{start:%-d %b %Y} to {last_day:%-d %b %Y}"
    return f"{human_day_or_time(start)} to {human_day_or_time(end)}"


def schedule_text(schedule: str | None) -> str:
    """A reset schedule in words for the common cron shapes, else the cron itself."""
    if not schedule:
        return "never resets (all-time board)"
    fields = schedule.split()
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit():
        at = f"{int(fields[1]):02d}:{int(fields[0]):02d} UTC"
        day_of_month, month, weekday = fields[2:]
        if (day_of_month, month, weekday) == ("*", "*", "*"):
            return f"resets every day at {at}"
        if (day_of_month, month) == ("*", "*") and weekday.isdigit() and int(weekday) <= 7:
            return f"resets every {WEEKDAYS[int(weekday) % 7]} at {at}"
        if day_of_month.isdigit() and (month, weekday) == ("*", "*"):
            return f"resets on day {int(day_of_month)} of every month at {at}"
    return f"resets on the schedule {schedule!r} (cron, UTC)"


def format_score(score: int) -> str:
    return f"{score:,}"


# ---- the screen's data ---------------------------------------------------------------------


@dataclass(frozen=True)
class BoardChoice:
    id: str
    label: str


@dataclass(frozen=True)
class PeriodChoice:
    start: datetime
    label: str
    param: str
    records: int
    current: bool


@dataclass(frozen=True)
class StandingRow:
    rank: int
    player_id: str
    score: str
    submissions: int
    reached_at: str
    updated_at: str
    highlighted: bool = False


@dataclass
class StandingsScreen:
    boards: list[BoardChoice]
    board: definitions.LeaderboardDefinition | None = None
    game_name: str | None = None
    description: str = ""
    periods: list[PeriodChoice] = field(default_factory=list)
    period: PeriodChoice | None = None
    rows: list[StandingRow] = field(default_factory=list)
    next_cursor: str | None = None
    paged: bool = False  # a page after the first
    player: str = ""
    player_missing: bool = False
    error: str | None = None


class _Refused(Exception):
    """A request the screen answers with a message and the pickers (status 4xx)."""

    def __init__(self, screen: StandingsScreen, status_code: int) -> None:
        super().__init__(screen.error)
        self.screen = screen
        self.status_code = status_code


def _board_choices(session: Session) -> tuple[list[BoardChoice], dict[str, str]]:
    conn = session.connection()
    names = dict(conn.execute(select(Game.game_id, Game.name)).tuples().all())
    boards = [
        BoardChoice(b.id, f"{b.id} — {names.get(b.game_id, b.game_id)} ({b.game_id})")
        for b in definitions.list_leaderboards(conn)
    ]
    return boards, names


def _period_choices(
    session: Session, board: definitions.LeaderboardDefinition, now: datetime
) -> list[PeriodChoice]:
    """Every period of the board, newest first; the current one first, labelled so."""
    current = definitions.current_board_period(board, now)
    stored = definitions.list_periods(session.connection(), board.id)
    choices = [
        PeriodChoice(
            p.start,
            period_label(p.start, p.end) + (" (current)" if p.start == current.start else ""),
            period_param(p.start),
            p.records,
            p.start == current.start,
        )
        for p in stored
    ]
    if not any(c.current for c in choices):  # a scheduled reset nobody has written to yet
        label = period_label(current.start, current.end) + " (current)"
        choices.insert(0, PeriodChoice(current.start, label, period_param(current.start), 0, True))
    return choices


def _row(record: reads.RankedRecord, player: str) -> StandingRow:
    return StandingRow(
        rank=record.rank,
        player_id=record.owner_id,
        score=format_score(record.score),
        submissions=record.num_score,
        reached_at=human_time(record.reached_at),
        updated_at=human_time(record.updated_at),
        highlighted=record.owner_id == player,
    )


def load_standings(
    session: Session,
    leaderboard_id: str | None,
    *,
    period: str | None = None,
    player: str | None = None,
    cursor: str | None = None,
    now: datetime | None = None,
) -> StandingsScreen:
    """Everything the screen shows, read in the caller's (time-limited) transaction.

    A parameter that is not valid raises :class:`_Refused` with the screen so far (the
    pickers) and its message.
    """
    now = now or datetime.now(UTC)
    boards, names = _board_choices(session)
    screen = StandingsScreen(boards=boards)
    if not leaderboard_id:
        return screen
    if len(leaderboard_id) > 64 or not re.match(LEADERBOARD_ID_PATTERN, leaderboard_id):
        screen.error = f"{leaderboard_id[:64]!r} is not a leaderboard id: pick one from the list."
        raise _Refused(screen, 400)
    conn = session.connection()
    try:
        board = definitions.get_leaderboard(conn, leaderboard_id)
    except LeaderboardError:
        screen.error = f"There is no leaderboard {leaderboard_id!r}: pick one from the list."
        raise _Refused(screen, 404) from None
    screen.board = board
    screen.game_name = names.get(board.game_id)
    screen.description = (
        f"{ORDER_TEXT[board.sort_order].capitalize()}, {OPERATOR_TEXT[board.operator]};"
        f" {schedule_text(board.reset_schedule)}. Ties go to the player who reached the score"
        " first."
    )
    screen.periods = _period_choices(session, board, now)
    chosen = screen.periods[0]
    if period:
        if len(period) > 64:
            screen.error = "period is too long to be a date: pick a period from the list."
            raise _Refused(screen, 400)
        try:
            start = parse_period(period)
        except StandingsRequestError as bad:
            screen.error = str(bad)
            raise _Refused(screen, 400) from None
        match = [c for c in screen.periods if c.start == start]
        if not match:
            screen.error = (
                f"Leaderboard {board.id!r} has no period starting {human_time(start)}:"
                " pick a period from the list."
            )
            raise _Refused(screen, 404)
        chosen = match[0]
    screen.period = chosen
    period_start = None if chosen.current else chosen.start
    try:
        if player:
            screen.player = player.strip()
            if not re.match(PLAYER_ID_PATTERN, screen.player):
                screen.error = (
                    f"{screen.player[:128]!r} is not a player id (letters, digits and _ . : @ -,"
                    " up to 128 characters)."
                )
                raise _Refused(screen, 400)
            found = reads.around(
                conn, board.id, screen.player, limit=AROUND, period_start=period_start, now=now
            )
            screen.player_missing = not found
            screen.rows = [_row(r, screen.player) for r in found]
            return screen
        page = reads.top(
            conn,
            board.id,
            limit=PAGE_SIZE,
            cursor=cursor or None,
            period_start=period_start,
            now=now,
        )
    except LeaderboardError as refused:
        screen.error = (
            "This page link is out of date: start again from the first page."
            if not isinstance(refused, NotFound)
            else str(refused)
        )
        raise _Refused(screen, 404 if isinstance(refused, NotFound) else 400) from None
    screen.rows = [_row(r, "") for r in page.records]
    screen.next_cursor = page.next_cursor
    screen.paged = bool(cursor)
    return screen


def standings_url(request: Request, **params: Any) -> str:
    """``/admin/standings?...`` with the parameters given (None values left out)."""
    base = str(request.url_for("admin:view-standings"))
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{base}?{urlencode(kept)}" if kept else base


def player_totals_url(request: Request, player_id: str) -> str:
    """The player's rows of ``player_totals`` (one per game they played)."""
    base = str(request.url_for("admin:index")).rstrip("/")
    return f"{base}/player-totals/list?{urlencode({'search': player_id})}"


def definition_url(request: Request, leaderboard_id: str) -> str:
    """The leaderboard's row of ``leaderboards`` (its settings)."""
    base = str(request.url_for("admin:index")).rstrip("/")
    return f"{base}/leaderboards/details/{quote(leaderboard_id, safe='')}"


class StandingsView(BaseView):
    """``/admin/standings``: rank, player, score per leaderboard period, with pickers."""

    name = "Leaderboard standings"
    icon = "fa-solid fa-ranking-star"

    @expose("/standings", identity="standings")
    async def standings_page(self, request: Request) -> Response:
        params = request.query_params
        too_long = [k for k, v in params.items() if len(v) > MAX_PARAM_LENGTH]
        session_maker = self._admin_ref.session_maker

        def load() -> tuple[StandingsScreen, int]:
            with session_maker() as session, session.begin():
                try:
                    if too_long:
                        screen = StandingsScreen(boards=_board_choices(session)[0])
                        screen.error = f"The {too_long[0]} parameter is too long."
                        return screen, 400
                    return load_standings(
                        session,
                        params.get("leaderboard_id"),
                        period=params.get("period"),
                        player=params.get("player"),
                        cursor=params.get("cursor"),
                    ), 200
                except _Refused as refused:
                    return refused.screen, refused.status_code

        with stopped_statements_explained():
            screen, status = await anyio.to_thread.run_sync(load)
        board_id = screen.board.id if screen.board else None
        period = screen.period.param if screen.period and not screen.period.current else None
        context = {
            "title": "Leaderboard standings",
            "screen": screen,
            "page_size": PAGE_SIZE,
            "around": AROUND,
            "found_row": next((r for r in screen.rows if r.highlighted), None),
            "definition_url": definition_url(request, board_id) if board_id else None,
            "first_page_url": standings_url(request, leaderboard_id=board_id, period=period),
            "next_page_url": (
                standings_url(
                    request, leaderboard_id=board_id, period=period, cursor=screen.next_cursor
                )
                if screen.next_cursor
                else None
            ),
            "period_urls": {
                p.param: standings_url(
                    request, leaderboard_id=board_id, period=None if p.current else p.param
                )
                for p in screen.periods
            },
            "player_urls": {
                r.player_id: player_totals_url(request, r.player_id) for r in screen.rows
            },
        }
        return await self.templates.TemplateResponse(
            request, "stride_standings.html", context, status_code=status
        )
