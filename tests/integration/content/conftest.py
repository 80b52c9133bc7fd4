"""Fixtures of the economy tests: a game with its key, app users with their tokens, and a
small catalog, all made through the real domain functions on the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.content import catalog
from core.content.catalog import ItemQuantity, ItemSpec, PackSpec, Price
from core.identity.app_users import create_app_user
from core.identity.game_keys import create_game
from core.platform.db import session_scope


@dataclass(frozen=True)
class Economy:
    game_id: str
    api_key: str


@dataclass(frozen=True)
class User:
    user_id: str
    token: str


@pytest.fixture
def economy(db_engine: Engine) -> Economy:
    with session_scope() as session:
        game = create_game(session, "Economy test", f"econ-{uuid.uuid4().hex[:10]}")
    return Economy(game.game_id, game.api_key)


@pytest.fixture
def new_user(db_engine: Engine) -> Callable[[], User]:
    def make() -> User:
        with session_scope() as session:
            made = create_app_user(session, f"u-{uuid.uuid4().hex[:12]}")
        return User(made.user_id, made.token)

    return make


def make_item(engine: Engine, game_id: str, item_id: str, **spec: object) -> None:
    fields: dict[str, object] = {"name": item_id, "stackable": True, **spec}
    with Session(engine) as session, session.begin():
        catalog.create_item(session, game_id, item_id, ItemSpec(**fields))  # type: ignore[arg-type]


def make_pack(
    engine: Engine,
    game_id: str,
    pack_id: str,
    items: dict[str, int],
    *,
    price: str = "5",
    currency: str = "USD",
    **spec: object,
) -> None:
    pack = PackSpec(
        name=pack_id,
        items=[ItemQuantity(item_id=i, quantity=q) for i, q in items.items()],
        price=Price(amount=price, currency=currency),  # type: ignore[arg-type]
        **spec,  # type: ignore[arg-type]
    )
    with Session(engine) as session, session.begin():
        catalog.create_pack(session, game_id, pack_id, pack)
