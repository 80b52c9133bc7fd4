"""Write quotas per credential at the front door: a game key's and an app user's writes are
counted in nginx's shared memory, the same bucket for every nginx worker (there are as many
as cores), so the quota holds whatever the number of workers; requests over it get nginx's
JSON 429 with ``Retry-After`` and never reach the API (nothing is logged for them). Reads
are not charged.

A second nginx, rendered from the same template with tight quotas (game key 1/s burst 5,
app user 1/min burst 3), runs before the session's API (a link to its socket); requests
come from several loopback addresses, so the per-IP limits never decide.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.proxy import PROXY, upstream_socket
from cli.stack import Stack, free_port, port_is_free
from core.identity.app_users import create_app_user
from core.identity.game_keys import create_game
from core.platform.config import Settings
from core.platform.db import session_scope
from tests.integration.platform.test_front_door import connect, nginx_error, own_address, response

pytestmark = pytest.mark.integration

GAME_KEY_BURST = 5
USER_BURST = 3


@pytest.fixture(scope="module")
def tight_door(live_api: str, stack_settings: Settings) -> Iterator[Settings]:
    """nginx with tight per-credential quotas before the session's API."""
    state = Path(tempfile.mkdtemp(prefix="stride-quota-"))
    state.chmod(0o755)  # nginx's workers (www-data, when we are root) read its folder
    settings = Settings(
        state_dir=state,
        api_port=free_port(),
        api_game_key_rate_limit_per_s=1,
        api_game_key_rate_limit_burst=GAME_KEY_BURST,
        api_user_rate_limit_per_min=1,
        api_user_rate_limit_burst=USER_BURST,
    )
    door = dataclasses.replace(
        PROXY,
        depends_on=(),
        probe=lambda s: "not listening" if port_is_free(s.api_host, s.api_port) else None,
    )
    stack = Stack(settings, [door])
    try:
        stack.up(report=lambda _m: None)
        upstream_socket(settings).symlink_to(upstream_socket(stack_settings))
        yield settings
    finally:
        stack.down(report=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)


def scores_at_once(
    settings: Settings,
    headers: dict[str, str],
    user_id: str,
    n: int,
    addresses: int,
    method: str = "POST",
) -> tuple[list[tuple[int, dict[str, str], bytes]], float]:
    """``n`` get_score calls spread over ``addresses`` new loopback addresses, every
    connection open before the first is sent; (answers, seconds from first send to last
    answer)."""
    body = json.dumps({"user_id": user_id, "input": 1.0}).encode()
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"{method} /v1/get_score HTTP/1.1\r\nHost: stride\r\nConnection: close\r\n{lines}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    froms = [own_address() for _ in range(addresses)]
    sockets = [connect(settings, froms[i % addresses]) for i in range(n)]
    try:
        started = time.monotonic()
        for sock in sockets:
            sock.sendall(request)
        answers = [
            (status, {k.lower(): v for k, v in h.items()}, b)
            for status, h, b in map(response, sockets)
        ]
        return answers, time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()


def logged(engine: Engine, user_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM score_log WHERE user_id = :u"), {"u": user_id}
        ).scalar_one()


def assert_refused_by_the_door(answers: list[tuple[int, dict[str, str], bytes]]) -> None:
    for status, headers, body in answers:
        if status == 429:
            assert headers["content-type"] == "application/json"
            assert headers["retry-after"] == "1"
            assert json.loads(body) == nginx_error(429)


def test_a_game_key_gets_its_burst_then_429s_and_other_keys_are_not_charged(
    tight_door: Settings, db_engine: Engine
) -> None:
    with session_scope() as session:
        first = create_game(session, "Quota A", f"qa-{uuid.uuid4().hex[:8]}").api_key
        second = create_game(session, "Quota B", f"qb-{uuid.uuid4().hex[:8]}").api_key
    player = f"quota-{uuid.uuid4().hex[:8]}"
    answers, seconds = scores_at_once(tight_door, {"X-Api-Key": first}, player, 16, addresses=4)
    served = [s for s, _h, _b in answers].count(200)
    # The burst, the request that opens the bucket, plus what the rate (1/s) refilled while
    # they arrived (nginx counts in milliseconds: one more under load): one bucket for the
    # key however many nginx workers took the 16 connections.
    assert GAME_KEY_BURST <= served <= GAME_KEY_BURST + int(seconds) + 2, (served, seconds)
    assert [s for s, _h, _b in answers].count(429) == 16 - served
    assert_refused_by_the_door(answers)
    assert logged(db_engine, player) == served  # the refused calls never reached the API
    # Reads are not charged: more GETs than the burst reach the API (405: get_score is a
    # POST), then the key still has its whole burst of writes.
    reads, _ = scores_at_once(tight_door, {"X-Api-Key": second}, "r", 8, addresses=1, method="GET")
    assert [s for s, _h, _b in reads] == [405] * 8
    other, _ = scores_at_once(
        tight_door, {"X-Api-Key": second}, f"{player}-b", GAME_KEY_BURST, addresses=1
    )
    assert [s for s, _h, _b in other] == [200] * GAME_KEY_BURST


def test_an_app_user_gets_its_burst_then_429s(tight_door: Settings, db_engine: Engine) -> None:
    user_id = f"quota-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        token = create_app_user(session, user_id).token
    answers, seconds = scores_at_once(
        tight_door, {"Authorization": f"Bearer {token}"}, user_id, 8, addresses=2
    )
    served = [s for s, _h, _b in answers].count(200)
    assert USER_BURST <= served <= USER_BURST + int(seconds / 60) + 1, (served, seconds)
    assert_refused_by_the_door(answers)
    assert logged(db_engine, user_id) == served


def test_calls_without_a_credential_are_not_charged_to_anyone(tight_door: Settings) -> None:
    answers, _ = scores_at_once(tight_door, {}, "nobody", 2 * GAME_KEY_BURST, addresses=2)
    assert [s for s, _h, _b in answers] == [401] * (2 * GAME_KEY_BURST)  # the API's answer
