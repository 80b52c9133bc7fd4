"""Gifts between users: offer → accept, decline, cancel or expire, with provenance.

Offering moves the units out of the sender's inventory into the gift's escrow (so they
cannot be offered twice or consumed meanwhile); accepting moves them into the recipient's
inventory, keeping who first unlocked each unit; a decline, a cancel or the expiry puts
them back. Every move is a ledger entry of both users (:mod:`core.content.inventory`).
Locks are taken in one order — the gift row, then each inventory by owner id — so two
transfers between the same users never deadlock. An offer is once per
``(game, sender, idempotency key)``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core.content.catalog import CatalogNotFound, effective_limit
from core.content.catalog_models import CatalogItem, Gift, GiftStatus, LedgerReason
from core.content.inventory import (
    KeyReused,
    NotGiftable,
    check_room,
    check_user,
    ledger,
    lock_inventory,
    owned_count,
    put_units,
    take_units,
)
from core.platform.errors import Conflict, Forbidden, Invalid, NotFound


class UnknownGift(NotFound):
    code = "gift_not_found"


class GiftClosed(Conflict):
    code = "gift_closed"


class NotYourGift(Forbidden):
    code = "not_your_gift"


@dataclass(frozen=True)
class GiftOffer:
    game_id: str
    sender_id: str
    recipient_id: str
    item_id: str
    quantity: int
    idempotency_key: str
    message: str = ""


def _move_rows(
    gift: Gift, owner_id: str, counterparty: str, reason: LedgerReason, sign: int, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "game_id": gift.game_id,
            "owner_id": owner_id,
            "item_id": gift.item_id,
            "content_id": None,
            "delta": sign * part["quantity"],
            "reason": reason,
            "unlocked_by": part["unlocked_by"],
            "grant_id": None,
            "gift_id": gift.gift_id,
            "counterparty": counterparty,
            "operation_key": None,
            "at": now,
        }
        for part in gift.escrow
    ]


def offer(
    session: Session, request: GiftOffer, *, ttl: timedelta, now: datetime
) -> tuple[Gift, bool]:
    """Offer units of a giftable item; returns the gift and whether it is new."""
    if request.recipient_id == request.sender_id:
        raise Invalid("a gift goes to another user, not to yourself")
    existing = session.scalars(
        select(Gift).where(
            Gift.game_id == request.game_id,
            Gift.sender_id == request.sender_id,
            Gift.idempotency_key == request.idempotency_key,
        )
    ).one_or_none()
    if existing is not None:
        same = (existing.recipient_id, existing.item_id, existing.quantity) == (
            request.recipient_id,
            request.item_id,
            request.quantity,
        )
        if not same:
            raise KeyReused("this Idempotency-Key was used for another gift: send a new key")
        return existing, False
    item = session.get(CatalogItem, (request.game_id, request.item_id))
    if item is None:
        raise CatalogNotFound(f"no item {request.item_id!r} in game {request.game_id!r}")
    if not item.giftable:
        raise NotGiftable(f"item {request.item_id!r} cannot be gifted")
    check_user(session, request.recipient_id)
    gift_id = uuid.uuid4()
    inserted = session.execute(
        pg_insert(Gift)
        .values(
            gift_id=gift_id,
            game_id=request.game_id,
            sender_id=request.sender_id,
            recipient_id=request.recipient_id,
            item_id=request.item_id,
            quantity=request.quantity,
            escrow=[],
            message=request.message,
            idempotency_key=request.idempotency_key,
            status=GiftStatus.offered,
            offered_at=now,
            expires_at=now + ttl,
        )
        .on_conflict_do_nothing()
        .returning(Gift.gift_id)
    ).scalar_one_or_none()
    if inserted is None:  # a concurrent duplicate committed first
        return offer(session, request, ttl=ttl, now=now)
    lock_inventory(session, request.game_id, request.sender_id)
    escrow = take_units(
        session, request.game_id, request.sender_id, request.item_id, request.quantity, now
    )
    gift = session.get(Gift, gift_id)
    assert gift is not None
    gift.escrow = escrow
    ledger(
        session,
        _move_rows(
            gift, request.sender_id, request.recipient_id, LedgerReason.gift_offered, -1, now
        ),
    )
    session.flush()
    return gift, True


def _locked(session: Session, gift_id: uuid.UUID) -> Gift:
    gift = session.scalars(
        select(Gift).where(Gift.gift_id == gift_id).with_for_update()
    ).one_or_none()
    if gift is None:
        raise UnknownGift(f"no gift {gift_id}")
    return gift


def _return_to_sender(session: Session, gift: Gift, status: GiftStatus, now: datetime) -> None:
    lock_inventory(session, gift.game_id, gift.sender_id)
    item = session.get(CatalogItem, (gift.game_id, gift.item_id))
    assert item is not None
    for part in gift.escrow:
        # The units were the sender's: back they go, whatever the item's limit is now.
        put_units(session, item, gift.sender_id, part["unlocked_by"], part["quantity"], now)
    ledger(
        session,
        _move_rows(gift, gift.sender_id, gift.recipient_id, LedgerReason.gift_returned, 1, now),
    )
    gift.status = status
    gift.decided_at = now


def _expire_if_due(session: Session, gift: Gift, now: datetime) -> None:
    if gift.status is GiftStatus.offered and gift.expires_at <= now:
        _return_to_sender(session, gift, GiftStatus.expired, now)
        session.flush()


def _open(gift: Gift) -> None:
    if gift.status is not GiftStatus.offered:
        raise GiftClosed(f"gift {gift.gift_id} is {gift.status.value}, no longer offered")


def accept(session: Session, gift_id: uuid.UUID, user_id: str, now: datetime) -> Gift:
    """The recipient takes the gift, within the item's max count (else it stays offered).
    Accepting an accepted gift again answers it unchanged."""
    gift = _locked(session, gift_id)
    if gift.recipient_id != user_id:
        raise NotYourGift("only the gift's recipient may accept it")
    if gift.status is GiftStatus.accepted:
        return gift
    _expire_if_due(session, gift, now)
    _open(gift)
    lock_inventory(session, gift.game_id, gift.recipient_id)
    item = session.get(CatalogItem, (gift.game_id, gift.item_id))
    assert item is not None
    limit = effective_limit(item.stackable, item.max_count)
    check_room(
        owned_count(session, gift.game_id, user_id, gift.item_id),
        gift.quantity,
        limit,
        gift.item_id,
    )
    for part in gift.escrow:
        put_units(session, item, gift.recipient_id, part["unlocked_by"], part["quantity"], now)
    ledger(
        session,
        _move_rows(gift, gift.recipient_id, gift.sender_id, LedgerReason.gift_received, 1, now),
    )
    gift.status = GiftStatus.accepted
    gift.decided_at = now
    session.flush()
    return gift


def decline(session: Session, gift_id: uuid.UUID, user_id: str, now: datetime) -> Gift:
    gift = _locked(session, gift_id)
    if gift.recipient_id != user_id:
        raise NotYourGift("only the gift's recipient may decline it")
    if gift.status is GiftStatus.declined:
        return gift
    _expire_if_due(session, gift, now)
    _open(gift)
    _return_to_sender(session, gift, GiftStatus.declined, now)
    session.flush()
    return gift


def cancel(session: Session, gift_id: uuid.UUID, user_id: str, now: datetime) -> Gift:
    gift = _locked(session, gift_id)
    if gift.sender_id != user_id:
        raise NotYourGift("only the gift's sender may cancel it")
    if gift.status is GiftStatus.cancelled:
        return gift
    _expire_if_due(session, gift, now)
    _open(gift)
    _return_to_sender(session, gift, GiftStatus.cancelled, now)
    session.flush()
    return gift


def expire_due(session: Session, now: datetime, limit: int = 1000) -> int:
    """Expire offered gifts past their time (units back to the senders); returns how many."""
    due = session.scalars(
        select(Gift)
        .where(Gift.status == GiftStatus.offered, Gift.expires_at <= now)
        .order_by(Gift.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for gift in due:
        _return_to_sender(session, gift, GiftStatus.expired, now)
    session.flush()
    return len(due)


def get_gift(session: Session, gift_id: uuid.UUID, user_id: str) -> Gift:
    gift = session.get(Gift, gift_id)
    if gift is None or user_id not in (gift.sender_id, gift.recipient_id):
        raise UnknownGift(f"no gift {gift_id} of yours")
    return gift


def gifts_of(
    session: Session,
    game_id: str,
    user_id: str,
    *,
    direction: str,
    status: GiftStatus | None,
    before: datetime | None,
    limit: int,
) -> list[Gift]:
    """Gifts the user sent or received, newest first."""
    column = Gift.sender_id if direction == "sent" else Gift.recipient_id
    query = select(Gift).where(Gift.game_id == game_id, column == user_id)
    if status is not None:
        query = query.where(Gift.status == status)
    if before is not None:
        query = query.where(Gift.offered_at < before)
    return list(session.scalars(query.order_by(Gift.offered_at.desc()).limit(limit)))
