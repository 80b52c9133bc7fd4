"""The ``actions`` table: prepared actions stored once per id, their submission (one
transaction hash per action, verified against what was prepared) and their status as the
chain decides it (:mod:`core.chain.action_tracking`). Only the owner sees an action: another
user's id is a NotFound, as an unknown one is."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.chain.models import ChainAction
from core.platform.errors import Conflict, NotFound


@dataclass(frozen=True)
class ActionView:
    id: uuid.UUID
    user_id: str
    chain_id: int
    kind: str
    wallet: str
    params: dict[str, Any]
    prepared: dict[str, Any]
    status: str
    reason: str | None
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    destination: dict[str, Any] | None
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None


def _view(row: ChainAction) -> ActionView:
    return ActionView(
        row.id,
        row.user_id,
        row.chain_id,
        row.kind,
        row.wallet,
        dict(row.params),
        dict(row.prepared),
        row.status,
        row.reason,
        row.tx_hash,
        row.block_number,
        row.block_hash,
        dict(row.destination) if row.destination is not None else None,
        row.created_at,
        row.submitted_at,
        row.finished_at,
    )


class UnknownAction(NotFound):
    code = "action_not_found"


class ActionIdTaken(Conflict):
    code = "action_id_conflict"


class AlreadySubmitted(Conflict):
    code = "action_already_submitted"


class TxClaimed(Conflict):
    code = "tx_hash_taken"


def create(
    session: Session,
    *,
    action_id: uuid.UUID,
    user_id: str,
    chain_id: int,
    kind: str,
    wallet: str,
    params: dict[str, Any],
    prepared: dict[str, Any],
) -> tuple[ActionView, bool]:
    """Store a prepared action; the same id again answers the stored one (``False``) when it
    is the same user's same request, else :class:`ActionIdTaken`."""
    inserted = session.execute(
        insert(ChainAction)
        .values(
            id=action_id,
            user_id=user_id,
            chain_id=chain_id,
            kind=kind,
            wallet=wallet,
            params=params,
            prepared=prepared,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(ChainAction.id)
    ).scalar()
    row = session.get(ChainAction, action_id, populate_existing=True)
    assert row is not None
    if inserted is None and (
        row.user_id != user_id
        or row.chain_id != chain_id
        or row.kind != kind
        or row.params != params
    ):
        raise ActionIdTaken(
            f"action id {action_id} was already used for another request; use a new UUID"
        )
    return _view(row), inserted is not None


def get(session: Session, user_id: str, action_id: uuid.UUID, *, lock: bool = False) -> ActionView:
    query = select(ChainAction).where(ChainAction.id == action_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query.execution_options(populate_existing=True)).first()
    if row is None or row.user_id != user_id:
        raise UnknownAction(f"no action {action_id} of this user")
    return _view(row)


def list_for_user(session: Session, user_id: str, limit: int) -> list[ActionView]:
    rows = session.scalars(
        select(ChainAction)
        .where(ChainAction.user_id == user_id)
        .order_by(ChainAction.created_at.desc(), ChainAction.id)
        .limit(limit)
    )
    return [_view(r) for r in rows]


def mark_submitted(session: Session, action: ActionView, tx_hash: str, now: datetime) -> ActionView:
    """Record the transaction of a prepared action. The same hash again is a no-op; another
    hash, or a hash another action holds, is a Conflict."""
    if action.tx_hash is not None:
        if action.tx_hash == tx_hash:
            return action
        raise AlreadySubmitted(
            f"action {action.id} was already submitted with transaction {action.tx_hash}"
        )
    try:
        with session.begin_nested():
            session.execute(
                update(ChainAction)
                .where(ChainAction.id == action.id)
                .values(tx_hash=tx_hash, status="submitted", submitted_at=now, updated_at=now)
            )
    except IntegrityError:
        raise TxClaimed(
            f"transaction {tx_hash} is already the transaction of another action"
        ) from None
    return get(session, action.user_id, action.id)


def set_status(
    session: Session,
    action: ActionView,
    *,
    status: str,
    now: datetime,
    reason: str | None = None,
    block_number: int | None = None,
    block_hash: str | None = None,
    destination: dict[str, Any] | None = None,
) -> ActionView:
    finished = status in ("confirmed", "failed")
    session.execute(
        update(ChainAction)
        .where(ChainAction.id == action.id)
        .values(
            status=status,
            reason=reason,
            block_number=block_number,
            block_hash=block_hash,
            destination=destination,
            finished_at=now if finished else None,
            updated_at=now,
        )
    )
    return get(session, action.user_id, action.id)
