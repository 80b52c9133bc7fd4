"""Inventories: what app users own (items in stacks per unlocker, content), purchases of
packs, consumption, and the ledger every change leaves behind.

Every grant carries an idempotency key that never expires: ``(game, requester, key)`` is
unique in ``grants``, and the grant row is inserted *first* in the purchase transaction, so
concurrent duplicates wait on that unique index and then read the one grant that committed
(50 concurrent duplicates grant once). Limits are enforced in the same transaction: the
stock by one conditional ``UPDATE ... RETURNING`` on the pack (the transaction's last
write, so the row is locked only until the commit), the max count per player
under a transaction-scoped advisory lock of the owner's inventory (every writer of one
inventory — purchases, gifts, rewards, consumption — takes it, in one order: the owner's).
A price in the game token inserts a ``burn`` reward command and **holds** the grant
(``payment_state = awaiting_payment``: stock reserved, room checked, nothing in the
inventory) until the chain writer confirms the burn on chain: :func:`settle_burns`, called
once from the writer's confirmation transaction, grants the items then (exactly once: the
grant row is locked and its state moves once), or releases the stock when the burn failed.
A hold whose burn is not authorized by its deadline is released by :func:`expire_unpaid`;
a paid grant whose items no longer fit (``refund_due``) is refunded by :func:`issue_refunds`
(a mint of the price, one command per grant) and ends ``refunded`` when the writer confirms
it. The sweeper (``cli/sweeper.py``) runs both on a schedule.
Other currencies are recorded on the grant only and granted at once (their payment
happens at the store that sells them).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, exists, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core.content.catalog import (
    PACKS,
    CatalogNotFound,
    effective_limit,
    get_definition,
    plain,
    window_problem,
)
from core.content.catalog_models import (
    CatalogItem,
    CatalogPack,
    Grant,
    GrantSource,
    InventoryItem,
    InventoryLedger,
    LedgerReason,
    PaymentState,
    UserContent,
)
from core.events.models import RewardCommandRow
from core.identity.models import AppUser, PlayerLink
from core.platform.errors import Conflict, Invalid, NotFound
from core.rewards.commands import REWARD_COMMAND_NAMESPACE, RewardAction, RewardStatus
from core.rewards.models import BurnAuthorization


class SoldOut(Conflict):
    code = "sold_out"


class NotOnSale(Conflict):
    code = "not_on_sale"


class MaxCountReached(Conflict):
    code = "max_count_reached"


class AlreadyOwned(Conflict):
    code = "already_owned"


class KeyReused(Conflict):
    code = "idempotency_key_reused"


class NotEnough(Conflict):
    code = "not_enough_items"


class NotGiftable(Invalid):
    code = "not_giftable"


class NotConsumable(Invalid):
    code = "not_consumable"


class UnknownUser(NotFound):
    code = "user_not_found"


class NoLinkedPlayer(Invalid):
    code = "no_linked_player"


@dataclass(frozen=True)
class PurchaseRequest:
    game_id: str
    pack_id: str
    buyer_id: str
    idempotency_key: str
    recipient_id: str | None = None  # None: the buyer

    @property
    def owner_id(self) -> str:
        return self.recipient_id or self.buyer_id

    def fingerprint(self) -> str:
        """What a reused key must repeat: the pack and the recipient."""
        return request_hash("purchase", self.pack_id, self.owner_id)


def request_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def burn_command_id(game_id: str, grant_id: uuid.UUID) -> uuid.UUID:
    """The burn of a purchase's price: derived from the grant, so it is issued once."""
    return uuid.uuid5(REWARD_COMMAND_NAMESPACE, f"{game_id}:grant:{grant_id}:burn")


def refund_command_id(game_id: str, grant_id: uuid.UUID) -> uuid.UUID:
    """The mint that refunds a grant's price: derived from the grant, so it is issued once
    however often a sweep runs (the contract pays each command id once, too)."""
    return uuid.uuid5(REWARD_COMMAND_NAMESPACE, f"{game_id}:grant:{grant_id}:refund")


# ---- the owner's lock and units ----------------------------------------------------------


def lock_inventory(session: Session, game_id: str, owner_id: str) -> None:
    """Serialize every change of one user's inventory in one game until the commit."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 20))"),
        {"k": f"inventory:{game_id}:{owner_id}"},
    )


def check_user(session: Session, user_id: str) -> None:
    found = session.scalar(
        select(AppUser.user_id).where(AppUser.user_id == user_id, AppUser.is_active)
    )
    if found is None:
        raise UnknownUser(f"no active app user {user_id!r}")


def owned_count(session: Session, game_id: str, owner_id: str, item_id: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(InventoryItem.quantity), 0)).where(
                InventoryItem.game_id == game_id,
                InventoryItem.owner_id == owner_id,
                InventoryItem.item_id == item_id,
            )
        )
        or 0
    )


def check_room(owned: int, adding: int, limit: int | None, item_id: str) -> None:
    """Pure: :class:`MaxCountReached` when ``owned + adding`` passes ``limit``."""
    if limit is not None and owned + adding > limit:
        raise MaxCountReached(
            f"a player may own at most {limit} of {item_id!r}: they have {owned}, "
            f"this would add {adding}"
        )


def add_units(
    session: Session,
    item: CatalogItem,
    owner_id: str,
    unlocked_by: str,
    quantity: int,
    now: datetime,
) -> None:
    """Add to the owner's stack of ``item`` unlocked by ``unlocked_by`` (caller holds the
    owner's lock), within the item's limit."""
    limit = effective_limit(item.stackable, item.max_count)
    owned = owned_count(session, item.game_id, owner_id, item.item_id)
    check_room(owned, quantity, limit, item.item_id)
    put_units(session, item, owner_id, unlocked_by, quantity, now)


def put_units(
    session: Session,
    item: CatalogItem,
    owner_id: str,
    unlocked_by: str,
    quantity: int,
    now: datetime,
) -> None:
    """Add to a stack without checking the limit (units coming back from escrow)."""
    stmt = pg_insert(InventoryItem).values(
        game_id=item.game_id,
        owner_id=owner_id,
        item_id=item.item_id,
        unlocked_by=unlocked_by,
        quantity=quantity,
        acquired_at=now,
        updated_at=now,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["game_id", "owner_id", "item_id", "unlocked_by"],
            set_={"quantity": InventoryItem.quantity + quantity, "updated_at": now},
        )
    )


def take_units(
    session: Session, game_id: str, owner_id: str, item_id: str, quantity: int, now: datetime
) -> list[dict[str, Any]]:
    """Remove ``quantity`` units from the owner's stacks, oldest first (caller holds the
    owner's lock). Returns what came from which unlocker: ``[{unlocked_by, quantity}]``."""
    stacks = session.scalars(
        select(InventoryItem)
        .where(
            InventoryItem.game_id == game_id,
            InventoryItem.owner_id == owner_id,
            InventoryItem.item_id == item_id,
        )
        .order_by(InventoryItem.acquired_at, InventoryItem.unlocked_by)
        .with_for_update()
    ).all()
    plan = plan_take([(s.unlocked_by, s.quantity) for s in stacks], quantity, item_id)
    for stack in stacks:
        taken = next((q for who, q in plan if who == stack.unlocked_by), 0)
        if taken == stack.quantity:
            session.delete(stack)
        elif taken:
            stack.quantity -= taken
            stack.updated_at = now
    session.flush()
    return [{"unlocked_by": who, "quantity": q} for who, q in plan]


def plan_take(
    stacks: Sequence[tuple[str, int]], quantity: int, item_id: str
) -> list[tuple[str, int]]:
    """Pure: which stacks ``quantity`` units come from, in order; :class:`NotEnough` when
    they hold fewer."""
    have = sum(q for _, q in stacks)
    if have < quantity:
        raise NotEnough(f"you own {have} of {item_id!r}, fewer than {quantity}")
    plan: list[tuple[str, int]] = []
    left = quantity
    for who, q in stacks:
        if left == 0:
            break
        taken = min(q, left)
        plan.append((who, taken))
        left -= taken
    return plan


def ledger(
    session: Session,
    rows: Sequence[dict[str, Any]],
) -> None:
    if rows:
        session.execute(insert(InventoryLedger), list(rows))


# ---- purchases ---------------------------------------------------------------------------


def grant_by_key(session: Session, game_id: str, requested_by: str, key: str) -> Grant | None:
    return session.scalars(
        select(Grant)
        .where(
            Grant.game_id == game_id,
            Grant.requested_by == requested_by,
            Grant.idempotency_key == key,
        )
        .execution_options(populate_existing=True)
    ).one_or_none()


def _replayed(grant: Grant, fingerprint: str) -> Grant:
    if grant.request_hash != fingerprint:
        raise KeyReused(
            "this Idempotency-Key was used for another request: send a new key for a new "
            "purchase (keys never expire)"
        )
    return grant


DEFAULT_PAYMENT_TIMEOUT_S = 1800  # STRIDE_PURCHASE_PAYMENT_TIMEOUT_S


def purchase(
    session: Session,
    request: PurchaseRequest,
    *,
    token: str,
    now: datetime,
    payment_timeout_s: int = DEFAULT_PAYMENT_TIMEOUT_S,
) -> tuple[Grant, bool]:
    """Buy a pack for the buyer or, as a gift, for another user. Returns the grant and
    whether it is new (False: the key was used before; nothing was granted again).

    Paid in the game token, the grant is held (``awaiting_payment``) until its burn is
    confirmed on chain; it must be authorized within ``payment_timeout_s``."""
    fingerprint = request.fingerprint()
    existing = grant_by_key(session, request.game_id, request.buyer_id, request.idempotency_key)
    if existing is not None:
        return _replayed(existing, fingerprint), False
    grant_id = uuid.uuid4()
    inserted = session.execute(
        pg_insert(Grant)
        .values(
            grant_id=grant_id,
            game_id=request.game_id,
            requested_by=request.buyer_id,
            idempotency_key=request.idempotency_key,
            request_hash=fingerprint,
            source=GrantSource.purchase,
            source_id=request.pack_id,
            owner_id=request.owner_id,
            unlocked_by=request.buyer_id,
            entries={},
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(Grant.grant_id)
    ).scalar_one_or_none()
    if inserted is None:  # a concurrent duplicate committed first: its grant is the answer
        again = grant_by_key(session, request.game_id, request.buyer_id, request.idempotency_key)
        assert again is not None
        return _replayed(again, fingerprint), False

    pack: CatalogPack = get_definition(session, PACKS, request.game_id, request.pack_id)
    if not pack.is_active:
        raise CatalogNotFound(f"pack {request.pack_id!r} is archived")
    if problem := window_problem(pack.starts_at, pack.ends_at, now):
        raise NotOnSale(f"pack {request.pack_id!r} is {problem}")
    if request.owner_id != request.buyer_id:
        if not pack.giftable:
            raise NotGiftable(f"pack {request.pack_id!r} cannot be bought as a gift")
        check_user(session, request.owner_id)
    command_id = _burn(session, request, pack, grant_id, token, now)
    held = command_id is not None
    entries = _grant_entries(
        session,
        pack.game_id,
        pack.entries,
        request.owner_id,
        request.buyer_id,
        grant_id,
        now,
        check_only=held,
    )
    if held:
        entries["stock_reserved"] = pack.stock_total is not None
    session.execute(
        update(Grant)
        .where(Grant.grant_id == grant_id)
        .values(
            entries=entries,
            price_amount=pack.price_amount,
            price_currency=pack.price_currency,
            reward_command_id=command_id,
            payment_state=PaymentState.awaiting_payment if held else None,
            payment_due_at=now + timedelta(seconds=payment_timeout_s) if held else None,
        )
    )
    grant = session.get(Grant, grant_id, populate_existing=True)
    assert grant is not None
    # Last: the pack's row stays locked from here to the commit, so concurrent buyers of
    # one limited pack wait for one statement and the commit, not the whole purchase.
    if pack.stock_total is not None and not _reserve_stock(session, pack.game_id, pack.pack_id):
        # Holds past their deadline still reserve units: release them, then try again.
        expire_unpaid(session, now, game_id=pack.game_id, pack_id=pack.pack_id)
        if not _reserve_stock(session, pack.game_id, pack.pack_id):
            raise SoldOut(f"pack {request.pack_id!r} is sold out ({pack.stock_total} sold)")
    return grant, True


def _reserve_stock(session: Session, game_id: str, pack_id: str) -> bool:
    sold = session.execute(
        update(CatalogPack)
        .where(
            CatalogPack.game_id == game_id,
            CatalogPack.pack_id == pack_id,
            CatalogPack.stock_sold < CatalogPack.stock_total,
        )
        .values(stock_sold=CatalogPack.stock_sold + 1)
        .returning(CatalogPack.stock_sold)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return sold is not None


def _release_stock(session: Session, grant: Grant) -> None:
    if not grant.entries.get("stock_reserved"):
        return
    session.execute(
        update(CatalogPack)
        .where(
            CatalogPack.game_id == grant.game_id,
            CatalogPack.pack_id == grant.source_id,
            CatalogPack.stock_sold > 0,
        )
        .values(stock_sold=CatalogPack.stock_sold - 1)
        .execution_options(synchronize_session=False)
    )


def _grant_entries(
    session: Session,
    game_id: str,
    pack_entries: dict[str, Any],
    owner_id: str,
    unlocked_by: str,
    grant_id: uuid.UUID,
    now: datetime,
    *,
    check_only: bool = False,
) -> dict[str, Any]:
    """Put the pack's items and content into the owner's inventory (under its lock);
    ``check_only``: only refuse what would not fit today (a held purchase)."""
    lock_inventory(session, game_id, owner_id)
    item_entries = list(pack_entries.get("items", []))
    content_ids = list(pack_entries.get("content", []))
    items = {
        i.item_id: i
        for i in session.scalars(
            select(CatalogItem).where(
                CatalogItem.game_id == game_id,
                CatalogItem.item_id.in_([e["item_id"] for e in item_entries]),
            )
        )
    }
    if check_only:
        for entry in item_entries:
            item = items[entry["item_id"]]
            owned = owned_count(session, game_id, owner_id, item.item_id)
            limit = effective_limit(item.stackable, item.max_count)
            check_room(owned, entry["quantity"], limit, item.item_id)
        owned_content = session.scalars(
            select(UserContent.content_id).where(
                UserContent.game_id == game_id,
                UserContent.owner_id == owner_id,
                UserContent.content_id.in_(content_ids),
            )
        ).first()
        if owned_content is not None:
            raise AlreadyOwned(f"{owner_id!r} already owns content {owned_content!r}")
        return {"items": item_entries, "content": content_ids}
    rows: list[dict[str, Any]] = []
    for entry in item_entries:
        add_units(session, items[entry["item_id"]], owner_id, unlocked_by, entry["quantity"], now)
        rows.append(
            _ledger_row(
                game_id,
                owner_id,
                unlocked_by,
                grant_id,
                now,
                item_id=entry["item_id"],
                delta=entry["quantity"],
            )
        )
    for content_id in content_ids:
        added = session.execute(
            pg_insert(UserContent)
            .values(
                game_id=game_id,
                owner_id=owner_id,
                content_id=content_id,
                unlocked_by=unlocked_by,
                grant_id=grant_id,
                unlocked_at=now,
            )
            .on_conflict_do_nothing()
            .returning(UserContent.content_id)
        ).scalar_one_or_none()
        if added is None:
            raise AlreadyOwned(f"{owner_id!r} already owns content {content_id!r}")
        rows.append(
            _ledger_row(
                game_id, owner_id, unlocked_by, grant_id, now, content_id=content_id, delta=1
            )
        )
    ledger(session, rows)
    return {"items": item_entries, "content": content_ids}


def _ledger_row(
    game_id: str,
    owner_id: str,
    unlocked_by: str,
    grant_id: uuid.UUID,
    now: datetime,
    *,
    delta: int,
    item_id: str | None = None,
    content_id: str | None = None,
) -> dict[str, Any]:
    return {
        "game_id": game_id,
        "owner_id": owner_id,
        "item_id": item_id,
        "content_id": content_id,
        "delta": delta,
        "reason": LedgerReason.granted,
        "unlocked_by": unlocked_by,
        "grant_id": grant_id,
        "gift_id": None,
        "counterparty": None if owner_id == unlocked_by else unlocked_by,
        "operation_key": None,
        "at": now,
    }


def _burn(
    session: Session,
    request: PurchaseRequest,
    pack: CatalogPack,
    grant_id: uuid.UUID,
    token: str,
    now: datetime,
) -> uuid.UUID | None:
    """A price in the game token burns it from the buyer's player (their wallet, through
    the reward commands). Other currencies: nothing here, the grant records the price."""
    if pack.price_currency != token or pack.price_amount <= 0:
        return None
    player_id = session.scalar(
        select(PlayerLink.player_id)
        .where(PlayerLink.game_id == pack.game_id, PlayerLink.user_id == request.buyer_id)
        .order_by(PlayerLink.linked_at)
        .limit(1)
    )
    if player_id is None:
        raise NoLinkedPlayer(
            f"paying in {token} burns from your player's wallet: link a player of game "
            f"{pack.game_id!r} to your account first (POST /v1/players/link-codes)"
        )
    command_id = burn_command_id(pack.game_id, grant_id)
    session.add(
        RewardCommandRow(
            command_id=command_id,
            source_event_id=grant_id,
            action=RewardAction.burn,
            status=RewardStatus.pending,
            game_id=pack.game_id,
            player_id=player_id,
            token=token,
            amount=pack.price_amount,
            reason=f"pack:{pack.pack_id}"[:128],
            issued_at=now,
            updated_at=now,
        )
    )
    session.flush()
    return command_id


# ---- payment: held grants settled by their burn ------------------------------------------


def settle_burns(conn: Connection, command_ids: Sequence[uuid.UUID | str], now: datetime) -> int:
    """The writer's confirmation hook: grants held for any of these reward commands follow
    their burn's status in this same transaction. Confirmed: the items are granted (once:
    the grant row is locked and leaves ``awaiting_payment`` once). Failed: the stock is
    released, ``payment_failed`` with the writer's reason. Anything else: nothing yet.

    A domain refusal never escapes (it would roll back the writer's confirmation): a paid
    grant whose items no longer fit becomes ``refund_due`` with the reason. Returns how
    many grants changed."""
    if not command_ids:
        return 0
    with Session(bind=conn) as session:
        changed = _settle_refunds(session, [uuid.UUID(str(c)) for c in command_ids], now)
        rows = session.execute(
            select(Grant, RewardCommandRow.status)
            .join(RewardCommandRow, RewardCommandRow.command_id == Grant.reward_command_id)
            .where(
                Grant.reward_command_id.in_([uuid.UUID(str(c)) for c in command_ids]),
                Grant.payment_state.in_(
                    [PaymentState.awaiting_payment, PaymentState.payment_failed]
                ),
            )
            .order_by(Grant.grant_id)
            .with_for_update(of=Grant)
        ).all()
        for grant, status in rows:
            changed += _settle(session, grant, RewardStatus(status), now)
        session.flush()
    return changed


def _settle(session: Session, grant: Grant, status: RewardStatus, now: datetime) -> int:
    if status is RewardStatus.failed and grant.payment_state is PaymentState.awaiting_payment:
        reason = session.scalar(
            text("SELECT reason FROM reward_executions WHERE command_id = :id"),
            {"id": grant.reward_command_id},
        )
        _fail(session, grant, f"the burn failed: {reason or 'no reason recorded'}", now)
        return 1
    if status is not RewardStatus.confirmed:
        return 0
    # Paid. A grant released before (a failed burn retried by an operator, then confirmed)
    # must reserve its unit of stock again.
    released = grant.payment_state is PaymentState.payment_failed
    try:
        with session.begin_nested():
            reserve = released and grant.entries.get("stock_reserved")
            if reserve and not _reserve_stock(session, grant.game_id, grant.source_id):
                raise SoldOut(f"pack {grant.source_id!r} sold out after the hold lapsed")
            assert grant.owner_id is not None  # a purchase always has its owner
            _grant_entries(
                session,
                grant.game_id,
                grant.entries,
                grant.owner_id,
                grant.unlocked_by,
                grant.grant_id,
                now,
            )
    except (Invalid, NotFound, Conflict) as exc:
        if not released:
            _release_stock(session, grant)
        grant.payment_state = PaymentState.refund_due
        grant.payment_reason = f"the burn was confirmed but the items cannot be granted: {exc}"
        grant.settled_at = now
        return 1
    grant.payment_state = PaymentState.paid
    grant.payment_reason = None
    grant.settled_at = now
    return 1


def _settle_refunds(session: Session, command_ids: list[uuid.UUID], now: datetime) -> int:
    """Grants ``refunding`` through one of these mints: ``refunded`` once it is confirmed.
    A failed refund mint stays ``refunding`` (its command says why; ``stride rewards retry``
    sends the same command again, and its confirmation ends the grant then)."""
    refunded = session.execute(
        update(Grant)
        .where(
            Grant.refund_command_id.in_(command_ids),
            Grant.payment_state == PaymentState.refunding,
            Grant.refund_command_id.in_(
                select(RewardCommandRow.command_id).where(
                    RewardCommandRow.command_id.in_(command_ids),
                    RewardCommandRow.status == RewardStatus.confirmed,
                )
            ),
        )
        .values(payment_state=PaymentState.refunded, settled_at=now)
        .returning(Grant.grant_id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(refunded)


def _fail(session: Session, grant: Grant, reason: str, now: datetime) -> None:
    _release_stock(session, grant)
    grant.payment_state = PaymentState.payment_failed
    grant.payment_reason = reason
    grant.settled_at = now


def expire_unpaid(
    session: Session,
    now: datetime,
    *,
    game_id: str | None = None,
    pack_id: str | None = None,
    limit: int = 100,
) -> int:
    """Held grants past their deadline whose burn the holder has not authorized: the burn
    command fails (the writer never sends it), the stock is released, ``payment_failed``.

    Locks in the writer's order (the command's row, then the grant's) and skips a command
    another transaction holds; an authorization that committed first wins (the burn goes
    on), one that comes after finds the command failed. Returns how many were released."""
    query = (
        select(Grant.grant_id, Grant.reward_command_id)
        .join(RewardCommandRow, RewardCommandRow.command_id == Grant.reward_command_id)
        .where(
            Grant.payment_state == PaymentState.awaiting_payment,
            Grant.payment_due_at <= now,
            # Authorized and on its way (its outcome settles it): never picked, so a batch
            # is only rows it can release and a sweep's batches always make progress.
            RewardCommandRow.status.in_([RewardStatus.pending, RewardStatus.needs_authorization]),
            ~exists().where(BurnAuthorization.command_id == Grant.reward_command_id),
        )
    )
    if game_id is not None:
        query = query.where(Grant.game_id == game_id)
    if pack_id is not None:
        query = query.where(Grant.source_id == pack_id)
    released = 0
    for grant_id, command_id in session.execute(
        query.order_by(Grant.payment_due_at)
        .limit(limit)
        # The command rows, in the writer's order, skipping those another sweep holds.
        .with_for_update(of=RewardCommandRow, skip_locked=True)
    ).all():
        status = session.scalar(
            select(RewardCommandRow.status).where(RewardCommandRow.command_id == command_id)
        )
        if status not in (RewardStatus.pending, RewardStatus.needs_authorization):
            continue  # moved on before the lock was ours: its outcome settles it
        authorized = session.scalar(
            text("SELECT 1 FROM burn_authorizations WHERE command_id = :id"), {"id": command_id}
        )
        grant = session.get(Grant, grant_id, with_for_update=True, populate_existing=True)
        if authorized or grant is None or grant.payment_state is not PaymentState.awaiting_payment:
            continue
        due = grant.payment_due_at
        waited = int((due - grant.created_at).total_seconds()) if due else 0
        reason = f"the burn was not authorized within {waited} s of the purchase"
        session.execute(
            update(RewardCommandRow)
            .where(RewardCommandRow.command_id == command_id)
            .values(status=RewardStatus.failed, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            text(
                "UPDATE reward_executions SET reason = :r, updated_at = clock_timestamp() "
                "WHERE command_id = :id"
            ),
            {"r": reason, "id": command_id},
        )
        _fail(session, grant, reason, now)
        released += 1
    session.flush()
    return released


def issue_refunds(session: Session, now: datetime, *, limit: int = 100) -> int:
    """Paid grants whose items could not be granted (``refund_due``): the price goes back
    to the player who paid, as a mint command derived from the grant (inserted once: a
    replayed sweep finds the command and inserts nothing), and the grant is ``refunding``
    until the writer confirms the mint (:func:`settle_burns`). Takes the grants with
    ``FOR UPDATE SKIP LOCKED``, so sweepers side by side each refund a disjoint set.
    Returns how many grants it moved."""
    rows = session.execute(
        select(Grant, RewardCommandRow)
        .join(RewardCommandRow, RewardCommandRow.command_id == Grant.reward_command_id)
        .where(Grant.payment_state == PaymentState.refund_due)
        .order_by(Grant.settled_at, Grant.grant_id)
        .limit(limit)
        .with_for_update(of=Grant, skip_locked=True)
    ).all()
    for grant, burn in rows:
        command_id = refund_command_id(grant.game_id, grant.grant_id)
        session.execute(
            pg_insert(RewardCommandRow)
            .values(
                command_id=command_id,
                source_event_id=grant.grant_id,
                action=RewardAction.mint,
                status=RewardStatus.pending,
                game_id=grant.game_id,
                player_id=burn.player_id,
                token=burn.token,
                amount=burn.amount,
                reason=f"refund:{grant.source_id}"[:128],
                issued_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[RewardCommandRow.command_id])
        )
        grant.refund_command_id = command_id
        grant.payment_state = PaymentState.refunding
        if (
            session.scalar(
                select(RewardCommandRow.status).where(RewardCommandRow.command_id == command_id)
            )
            == RewardStatus.confirmed
        ):  # a replay after the mint went through: it is done
            grant.payment_state = PaymentState.refunded
            grant.settled_at = now
    session.flush()
    return len(rows)


def purchase_intent_path(grant: Grant) -> str | None:
    """Where the app gets the permit to sign for a held grant (the permit flow)."""
    if grant.payment_state is not PaymentState.awaiting_payment:
        return None
    return f"/v1/purchases/{grant.reward_command_id}/intent"


# ---- consumption -------------------------------------------------------------------------


def consume(
    session: Session,
    game_id: str,
    owner_id: str,
    item_id: str,
    quantity: int,
    operation_key: str,
    now: datetime,
) -> bool:
    """The game spends ``quantity`` of a consumable item of the user; once per
    ``operation_key`` (False: already done, nothing consumed again)."""
    lock_inventory(session, game_id, owner_id)
    done = session.scalar(
        select(InventoryLedger.entry_id)
        .where(
            InventoryLedger.game_id == game_id,
            InventoryLedger.owner_id == owner_id,
            InventoryLedger.operation_key == operation_key,
        )
        .limit(1)
    )
    if done is not None:
        return False
    item = session.get(CatalogItem, (game_id, item_id))
    if item is None:
        raise CatalogNotFound(f"no item {item_id!r} in game {game_id!r}")
    if not item.consumable:
        raise NotConsumable(f"item {item_id!r} is not consumable")
    taken = take_units(session, game_id, owner_id, item_id, quantity, now)
    ledger(
        session,
        [
            {
                "game_id": game_id,
                "owner_id": owner_id,
                "item_id": item_id,
                "content_id": None,
                "delta": -part["quantity"],
                "reason": LedgerReason.consumed,
                "unlocked_by": part["unlocked_by"],
                "grant_id": None,
                "gift_id": None,
                "counterparty": None,
                # One row per stack; the key on the first is what makes a retry a no-op.
                "operation_key": operation_key if n == 0 else None,
                "at": now,
            }
            for n, part in enumerate(taken)
        ],
    )
    return True


# ---- reads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InventoryPage:
    items: list[InventoryItem]
    content: list[UserContent]


def inventory_of(
    session: Session,
    game_id: str,
    owner_id: str,
    *,
    item_id: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 100,
) -> list[InventoryItem]:
    """The owner's stacks in (item, unlocker) order, after the cursor ``after``."""
    query = select(InventoryItem).where(
        InventoryItem.game_id == game_id, InventoryItem.owner_id == owner_id
    )
    if item_id is not None:
        query = query.where(InventoryItem.item_id == item_id)
    if after is not None:
        query = query.where(tuple_(InventoryItem.item_id, InventoryItem.unlocked_by) > after)
    return list(
        session.scalars(
            query.order_by(InventoryItem.item_id, InventoryItem.unlocked_by).limit(limit)
        )
    )


def content_of(session: Session, game_id: str, owner_id: str) -> list[UserContent]:
    return list(
        session.scalars(
            select(UserContent)
            .where(UserContent.game_id == game_id, UserContent.owner_id == owner_id)
            .order_by(UserContent.content_id)
        )
    )


def grants_of(
    session: Session,
    game_id: str,
    user_id: str,
    *,
    before: datetime | None = None,
    limit: int = 50,
) -> list[Grant]:
    """Grants the user received or paid for, newest first."""
    query = select(Grant).where(
        Grant.game_id == game_id, (Grant.owner_id == user_id) | (Grant.unlocked_by == user_id)
    )
    if before is not None:
        query = query.where(Grant.created_at < before)
    return list(session.scalars(query.order_by(Grant.created_at.desc()).limit(limit)))


def history_of(
    session: Session,
    game_id: str,
    owner_id: str,
    *,
    item_id: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[InventoryLedger]:
    """The owner's ledger entries in order: the provenance of what they hold."""
    query = select(InventoryLedger).where(
        InventoryLedger.game_id == game_id, InventoryLedger.owner_id == owner_id
    )
    if item_id is not None:
        query = query.where(InventoryLedger.item_id == item_id)
    if after is not None:
        query = query.where(InventoryLedger.entry_id > after)
    return list(session.scalars(query.order_by(InventoryLedger.entry_id).limit(limit)))


def burn_status(session: Session, command_id: uuid.UUID | None) -> RewardStatus | None:
    if command_id is None:
        return None
    return session.scalar(
        select(RewardCommandRow.status).where(RewardCommandRow.command_id == command_id)
    )


def price_of(grant: Grant) -> tuple[Decimal, str] | None:
    if grant.price_amount is None or grant.price_currency is None:
        return None
    return plain(grant.price_amount), grant.price_currency
