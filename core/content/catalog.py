"""The catalog of a game: items, unlockable content (battle-pass seasons with tiers), packs.

Definitions are written by the studio (its game key) and versioned: every write bumps
``version``, which the API shows as the ``ETag``; a write that names a stale version
(``If-Match``) is refused with :class:`~core.platform.versions.StaleVersion` and changes
nothing. A delete
archives (``is_active`` false): inventories, grants and gifts keep pointing at the row.
The specs below are the domain's contracts; the API maps its versions (/v1, /v2) onto them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core.content.catalog_models import (
    CatalogContent,
    CatalogItem,
    CatalogPack,
    ContentKind,
    ContentTier,
)
from core.events.contracts import CURRENCY_PATTERN
from core.platform.db import Base
from core.platform.errors import Conflict, Invalid, NotFound
from core.platform.json_bounds import json_problem
from core.platform.versions import Precondition, check_version

CATALOG_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
CatalogId = Annotated[
    str, Field(pattern=CATALOG_ID_PATTERN, description="lower-case id, 1-64 characters")
]
# Text PostgreSQL can store: no NUL (it refuses them in text columns).
TEXT_PATTERN = r"^[^\x00]*$"
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=TEXT_PATTERN)]
Description = Annotated[str, Field(max_length=500, pattern=TEXT_PATTERN)]
Quantity = Annotated[int, Field(ge=1, le=1_000_000)]
TokenAmount = Annotated[Decimal, Field(ge=0, max_digits=36, decimal_places=18)]
MAX_PROPERTIES_BYTES = 16 * 1024
MAX_TIERS = 200
MAX_PACK_ENTRIES = 50
# What earns battle-pass XP (counted per event by core.content.progress).
XpKind = Literal["match_played", "match_won", "score_reached", "purchase", "session"]


class CatalogNotFound(NotFound):
    code = "not_found"


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_properties(value: dict[str, Any]) -> dict[str, Any]:
    problem = json_problem(value, max_bytes=MAX_PROPERTIES_BYTES, max_depth=8, name="properties")
    if problem:
        raise ValueError(problem)
    return value


class ItemQuantity(Spec):
    item_id: CatalogId
    quantity: Quantity = 1


class Rewards(Spec):
    """What a tier or an achievement grants: items, battle-pass XP, game tokens (minted)."""

    items: list[ItemQuantity] = Field(default_factory=list, max_length=MAX_PACK_ENTRIES)
    xp: Annotated[int, Field(ge=0, le=10**9)] = 0
    tokens: TokenAmount = Decimal(0)


class ItemSpec(Spec):
    name: Name
    description: Description = ""
    stackable: bool = Field(description="A quantity; otherwise a player holds one at most")
    max_count: Annotated[int, Field(ge=1, le=10**9)] | None = Field(
        default=None, description="Most units one player may own (null: unlimited)"
    )
    consumable: bool = False
    giftable: bool = True
    properties: dict[str, Any] = Field(default_factory=dict)

    _properties = field_validator("properties")(_check_properties)

    @property
    def limit(self) -> int | None:
        """The most units a player may hold: 1 for a non-stackable item."""
        return effective_limit(self.stackable, self.max_count)


def effective_limit(stackable: bool, max_count: int | None) -> int | None:
    if not stackable:
        return 1 if max_count is None else min(1, max_count)
    return max_count


class TierSpec(Spec):
    tier: Annotated[int, Field(ge=1, le=MAX_TIERS)]
    xp_required: Annotated[int, Field(ge=0, le=10**12)]
    rewards: Rewards = Field(default_factory=Rewards)


class ContentSpec(Spec):
    kind: ContentKind
    name: Name
    description: Description = ""
    properties: dict[str, Any] = Field(default_factory=dict)
    xp_rules: dict[XpKind, Annotated[int, Field(ge=0, le=10**6)]] = Field(
        default_factory=dict, description="Battle pass: XP per event of each kind"
    )
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    tiers: list[TierSpec] = Field(default_factory=list, max_length=MAX_TIERS)

    _properties = field_validator("properties")(_check_properties)

    @model_validator(mode="after")
    def _consistent(self) -> ContentSpec:
        check_window(self.starts_at, self.ends_at)
        if self.kind is ContentKind.unlockable and (self.tiers or self.xp_rules):
            raise ValueError(
                "tiers and xp_rules belong to a battle_pass, not to unlockable content"
            )
        numbers = [t.tier for t in self.tiers]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError("tiers must be numbered 1, 2, 3, ... in order")
        xps = [t.xp_required for t in self.tiers]
        if any(b <= a for a, b in itertools.pairwise(xps)):
            raise ValueError("each tier must need more xp_required than the one before")
        if any(t.rewards.xp for t in self.tiers):
            raise ValueError("a tier's rewards cannot be battle-pass xp")
        return self


class Price(Spec):
    amount: TokenAmount
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN, examples=["STRIDE", "USD"])]


class PackSpec(Spec):
    name: Name
    description: Description = ""
    items: list[ItemQuantity] = Field(default_factory=list, max_length=MAX_PACK_ENTRIES)
    content: list[CatalogId] = Field(default_factory=list, max_length=MAX_PACK_ENTRIES)
    price: Price
    giftable: bool = True
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    stock_total: Annotated[int, Field(ge=0, le=10**9)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PackSpec:
        check_window(self.starts_at, self.ends_at)
        if not self.items and not self.content:
            raise ValueError("a pack holds at least one item or content")
        ids = [i.item_id for i in self.items]
        if len(set(ids)) != len(ids) or len(set(self.content)) != len(self.content):
            raise ValueError("each item and content appears once in a pack (use quantity)")
        return self


def plain(amount: Decimal) -> Decimal:
    """``4.990000000000000000`` (a NUMERIC(38, 18)) as ``4.99``, never as ``1E+2``."""
    return Decimal(format(amount.normalize(), "f"))


def check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")


def window_problem(starts_at: datetime | None, ends_at: datetime | None, now: datetime) -> str:
    """Why ``now`` is outside the window (empty when inside)."""
    if starts_at is not None and now < starts_at:
        return f"not on sale before {starts_at.isoformat()}"
    if ends_at is not None and now >= ends_at:
        return f"sale ended at {ends_at.isoformat()}"
    return ""


# ---- a versioned definition: create, read, list, replace, archive --------------------------

M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class Definition:
    """Where one kind of definition lives: its model, its id column and its name."""

    model: type[Any]
    id_column: str
    noun: str

    def key(self, game_id: str, object_id: str) -> tuple[Any, ...]:
        return (self.model.game_id == game_id, getattr(self.model, self.id_column) == object_id)


ITEMS = Definition(CatalogItem, "item_id", "item")
CONTENT = Definition(CatalogContent, "content_id", "content")
PACKS = Definition(CatalogPack, "pack_id", "pack")


def get_definition(
    session: Session, kind: Definition, game_id: str, object_id: str, *, lock: bool = False
) -> Any:
    query = select(kind.model).where(*kind.key(game_id, object_id))
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise CatalogNotFound(f"no {kind.noun} {object_id!r} in game {game_id!r}")
    return row


def create_definition(
    session: Session, kind: Definition, game_id: str, object_id: str, values: dict[str, Any]
) -> Any:
    """Insert a new definition; :class:`Conflict` when the id is taken (even archived)."""
    inserted = session.execute(
        pg_insert(kind.model)
        .values(game_id=game_id, **{kind.id_column: object_id}, **values)
        .on_conflict_do_nothing()
        .returning(kind.model)
    ).scalar_one_or_none()
    if inserted is None:
        raise Conflict(
            f"{kind.noun} {object_id!r} exists in game {game_id!r}: update it with PUT instead"
        )
    return inserted


def update_definition(
    session: Session,
    kind: Definition,
    game_id: str,
    object_id: str,
    values: dict[str, Any],
    expected: Precondition | None,
    now: datetime,
) -> Any:
    """Write ``values`` when the row is still at a version ``expected`` admits (any when
    None: the last write wins). The row is locked while its version is compared, so two
    writers of the same version cannot both succeed."""
    model = kind.model
    current = session.execute(
        select(model.version).where(*kind.key(game_id, object_id)).with_for_update()
    ).scalar_one_or_none()
    if current is None:
        raise CatalogNotFound(f"no {kind.noun} {object_id!r} in game {game_id!r}")
    check_version(current, expected, f"{kind.noun} {object_id!r}", required=False)
    return session.execute(
        update(model)
        .where(*kind.key(game_id, object_id))
        .values(**values, version=model.version + 1, updated_at=now)
        .returning(model)
        .execution_options(synchronize_session=False)
    ).scalar_one()


def list_definitions(
    session: Session,
    kind: Definition,
    game_id: str,
    *,
    after: str | None,
    limit: int,
    include_archived: bool = False,
    filters: Sequence[Any] = (),
) -> list[Any]:
    """One page in id order, after the id ``after`` (keyset pagination)."""
    model = kind.model
    id_col = getattr(model, kind.id_column)
    query = select(model).where(model.game_id == game_id, *filters)
    if not include_archived:
        query = query.where(model.is_active)
    if after is not None:
        query = query.where(id_col > after)
    return list(session.scalars(query.order_by(id_col).limit(limit)))


# ---- items -------------------------------------------------------------------------------


def item_values(spec: ItemSpec) -> dict[str, Any]:
    return spec.model_dump()


def create_item(session: Session, game_id: str, item_id: str, spec: ItemSpec) -> CatalogItem:
    return create_definition(session, ITEMS, game_id, item_id, item_values(spec))


def replace_item(
    session: Session,
    game_id: str,
    item_id: str,
    spec: ItemSpec,
    expected: Precondition | None,
    now: datetime,
) -> CatalogItem:
    return update_definition(
        session,
        ITEMS,
        game_id,
        item_id,
        {**item_values(spec), "is_active": True},
        expected,
        now,
    )


def archive(
    session: Session,
    kind: Definition,
    game_id: str,
    object_id: str,
    expected: Precondition | None,
    now: datetime,
) -> Any:
    return update_definition(session, kind, game_id, object_id, {"is_active": False}, expected, now)


# ---- content and its tiers ---------------------------------------------------------------


def _check_reward_items(session: Session, game_id: str, rewards: Sequence[Rewards]) -> None:
    wanted = {i.item_id for r in rewards for i in r.items}
    check_items_exist(session, game_id, wanted)


def check_items_exist(session: Session, game_id: str, item_ids: set[str]) -> None:
    if not item_ids:
        return
    found = set(
        session.scalars(
            select(CatalogItem.item_id).where(
                CatalogItem.game_id == game_id,
                CatalogItem.item_id.in_(item_ids),
                CatalogItem.is_active,
            )
        )
    )
    if missing := item_ids - found:
        raise Invalid(f"no active item {sorted(missing)!r} in game {game_id!r}: create it first")


def _content_values(spec: ContentSpec) -> dict[str, Any]:
    return spec.model_dump(exclude={"tiers"}, mode="json") | {
        "kind": spec.kind,
        "starts_at": spec.starts_at,
        "ends_at": spec.ends_at,
    }


def _write_tiers(session: Session, game_id: str, content_id: str, spec: ContentSpec) -> None:
    session.execute(
        delete(ContentTier).where(
            ContentTier.game_id == game_id, ContentTier.content_id == content_id
        )
    )
    if spec.tiers:
        session.execute(
            insert(ContentTier),
            [
                {
                    "game_id": game_id,
                    "content_id": content_id,
                    "tier": t.tier,
                    "xp_required": t.xp_required,
                    "rewards": t.rewards.model_dump(mode="json"),
                }
                for t in spec.tiers
            ],
        )


def create_content(
    session: Session, game_id: str, content_id: str, spec: ContentSpec
) -> CatalogContent:
    _check_reward_items(session, game_id, [t.rewards for t in spec.tiers])
    row = create_definition(session, CONTENT, game_id, content_id, _content_values(spec))
    _write_tiers(session, game_id, content_id, spec)
    return row


def replace_content(
    session: Session,
    game_id: str,
    content_id: str,
    spec: ContentSpec,
    expected: Precondition | None,
    now: datetime,
) -> CatalogContent:
    _check_reward_items(session, game_id, [t.rewards for t in spec.tiers])
    row = update_definition(
        session,
        CONTENT,
        game_id,
        content_id,
        {**_content_values(spec), "is_active": True},
        expected,
        now,
    )
    _write_tiers(session, game_id, content_id, spec)
    return row


def tiers_of(
    session: Session, game_id: str, content_ids: Sequence[str]
) -> dict[str, list[TierSpec]]:
    rows = session.scalars(
        select(ContentTier)
        .where(ContentTier.game_id == game_id, ContentTier.content_id.in_(content_ids))
        .order_by(ContentTier.content_id, ContentTier.tier)
    )
    out: dict[str, list[TierSpec]] = {c: [] for c in content_ids}
    for row in rows:
        out[row.content_id].append(
            TierSpec(tier=row.tier, xp_required=row.xp_required, rewards=Rewards(**row.rewards))
        )
    return out


# ---- packs -------------------------------------------------------------------------------


def _pack_values(spec: PackSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "entries": {
            "items": [i.model_dump() for i in spec.items],
            "content": list(spec.content),
        },
        "price_amount": spec.price.amount,
        "price_currency": spec.price.currency,
        "giftable": spec.giftable,
        "starts_at": spec.starts_at,
        "ends_at": spec.ends_at,
        "stock_total": spec.stock_total,
    }


def _check_pack_refs(session: Session, game_id: str, spec: PackSpec) -> None:
    check_items_exist(session, game_id, {i.item_id for i in spec.items})
    if spec.content:
        found = set(
            session.scalars(
                select(CatalogContent.content_id).where(
                    CatalogContent.game_id == game_id,
                    CatalogContent.content_id.in_(spec.content),
                    CatalogContent.is_active,
                )
            )
        )
        if missing := set(spec.content) - found:
            raise Invalid(f"no active content {sorted(missing)!r} in game {game_id!r}")


def create_pack(session: Session, game_id: str, pack_id: str, spec: PackSpec) -> CatalogPack:
    _check_pack_refs(session, game_id, spec)
    return create_definition(session, PACKS, game_id, pack_id, _pack_values(spec))


def replace_pack(
    session: Session,
    game_id: str,
    pack_id: str,
    spec: PackSpec,
    expected: Precondition | None,
    now: datetime,
) -> CatalogPack:
    _check_pack_refs(session, game_id, spec)
    values = {**_pack_values(spec), "is_active": True}
    current = get_definition(session, PACKS, game_id, pack_id)
    if spec.stock_total is not None and spec.stock_total < current.stock_sold:
        raise Invalid(
            f"stock_total {spec.stock_total} is below the {current.stock_sold} already sold"
        )
    return update_definition(session, PACKS, game_id, pack_id, values, expected, now)


def pack_spec(row: CatalogPack) -> PackSpec:
    """A stored pack as its spec (what both API versions render)."""
    return PackSpec(
        name=row.name,
        description=row.description,
        items=[ItemQuantity(**i) for i in row.entries.get("items", [])],
        content=list(row.entries.get("content", [])),
        price=Price(amount=plain(row.price_amount), currency=row.price_currency),
        giftable=row.giftable,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        stock_total=row.stock_total,
    )


def pack_filters(*, currency: str | None = None, on_sale_at: datetime | None = None) -> list[Any]:
    filters: list[Any] = []
    if currency is not None:
        filters.append(CatalogPack.price_currency == currency)
    if on_sale_at is not None:
        filters.append(
            (CatalogPack.starts_at.is_(None) | (CatalogPack.starts_at <= on_sale_at))
            & (CatalogPack.ends_at.is_(None) | (CatalogPack.ends_at > on_sale_at))
        )
    return filters
