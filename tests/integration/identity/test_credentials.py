"""Game API keys and app user tokens: issued once, stored hashed, rotated and revoked."""

import uuid

from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.identity.app_users import (
    TokenAuthenticator,
    create_app_user,
    deactivate,
    rotate_token,
)
from core.identity.credentials import hash_secret
from core.identity.game_keys import KeyAuthenticator, create_game, rotate_key
from core.platform.db import session_scope


def test_game_key_is_stored_hashed_and_rotation_revokes_the_old_one(db_engine: Engine) -> None:
    game_id = f"cred-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        first = create_game(session, "Cred Test", game_id=game_id)
    with db_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT api_key_hash FROM games WHERE game_id = :g"), {"g": game_id}
        ).scalar_one()
    assert stored == hash_secret(first.api_key) and first.api_key not in stored
    auth = KeyAuthenticator(db_engine, ttl=0)
    assert auth.game_for(first.api_key) == game_id
    assert auth.game_for(first.api_key + "x") is None
    with session_scope() as session:
        second = rotate_key(session, game_id)
    assert auth.game_for(first.api_key) is None
    assert auth.game_for(second.api_key) == game_id


def test_app_token_rotation_and_deactivation(db_engine: Engine) -> None:
    user_id = f"cred-user-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        first = create_app_user(session, user_id)
    auth = TokenAuthenticator(db_engine, ttl=0)
    assert auth.user_for(first.token) == user_id
    with session_scope() as session:
        second = rotate_token(session, user_id)
    assert auth.user_for(first.token) is None
    assert auth.user_for(second.token) == user_id
    with session_scope() as session:
        deactivate(session, user_id)
    assert auth.user_for(second.token) is None


def test_answers_are_cached_for_the_ttl(db_engine: Engine) -> None:
    user_id = f"cred-cache-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        token = create_app_user(session, user_id).token
    auth = TokenAuthenticator(db_engine, ttl=3600)
    assert auth.user_for(token) == user_id
    with session_scope() as session:
        deactivate(session, user_id)
    assert auth.user_for(token) == user_id  # within the TTL the cached answer stands
    assert TokenAuthenticator(db_engine, ttl=0).user_for(token) is None


def test_the_cache_is_readable_without_the_database(db_engine: Engine) -> None:
    """What the API's event loop asks first (api.deps.credential_owner): a fresh answer,
    positive or negative, or a miss that sends the lookup to a worker thread."""
    user_id = f"cred-peek-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        token = create_app_user(session, user_id).token
    auth = TokenAuthenticator(db_engine, ttl=3600)
    assert auth.cached_owner(token) == (False, None)
    assert auth.user_for(token) == user_id
    assert auth.cached_owner(token) == (True, user_id)
    assert auth.user_for(token + "x") is None
    assert auth.cached_owner(token + "x") == (True, None)
    expired = TokenAuthenticator(db_engine, ttl=0)
    assert expired.user_for(token) == user_id
    assert expired.cached_owner(token) == (False, None)


def test_while_the_database_is_down_known_credentials_keep_their_last_answer(
    db_engine: Engine,
) -> None:
    """A known game key keeps working (ingest goes on while Kafka is up); an unknown one is
    a 503-kind refusal naming the database, not a crash."""
    import pytest
    from sqlalchemy import create_engine

    from cli.stack import free_port
    from core.platform.errors import Unavailable

    user_id = f"cred-outage-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        token = create_app_user(session, user_id).token
    auth = TokenAuthenticator(db_engine, ttl=0)
    assert auth.user_for(token) == user_id
    auth._engine = create_engine(  # the same lookup, its database now gone
        f"postgresql+psycopg://x:y@127.0.0.1:{free_port()}/z"
    )
    assert auth.user_for(token) == user_id
    with pytest.raises(Unavailable, match="database is unavailable"):
        auth.user_for("st_unknown_token")
