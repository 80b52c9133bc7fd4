"""The economy's routes, typed: catalog (items, content, packs v2 and the deprecated v1),
purchases, inventories, gifts and achievements, over :class:`stride_client._http.Transport`.

Studio calls need a transport with the game's key; a player's calls (purchases, their
inventory, gifts) one with the app user's token. Reads that either may make take the game
id when the transport carries a token. Single definitions come back with their ``ETag``
(:class:`Tagged`): pass it as ``if_match`` to a write so that it is refused with a 412
(:class:`StrideAPIError` ``precondition_failed``) when someone changed the definition
since. Purchases, gifts and consumption take an idempotency key and are retried on
429/5xx with the same key, so a retry never grants twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar, cast

from stride_client._http import Transport

T = TypeVar("T")


@dataclass(frozen=True)
class Tagged(Generic[T]):
    """A definition and the ETag to send back in ``If-Match``."""

    value: T
    etag: str


class ItemQuantity(TypedDict):
    item_id: str
    quantity: int


class Item(TypedDict):
    item_id: str
    name: str
    description: str
    stackable: bool
    max_count: int | None
    consumable: bool
    giftable: bool
    properties: dict[str, Any]
    is_active: bool
    version: int
    created_at: str
    updated_at: str


class Rewards(TypedDict, total=False):
    items: list[ItemQuantity]
    xp: int
    tokens: str


class Tier(TypedDict):
    tier: int
    xp_required: int
    rewards: Rewards


class Content(TypedDict):
    content_id: str
    kind: Literal["unlockable", "battle_pass"]
    name: str
    description: str
    properties: dict[str, Any]
    xp_rules: dict[str, int]
    starts_at: str | None
    ends_at: str | None
    tiers: list[Tier]
    is_active: bool
    version: int


class Price(TypedDict):
    amount: str
    currency: str


class Pack(TypedDict):
    """A pack as /v2 shows it."""

    pack_id: str
    name: str
    description: str
    items: list[ItemQuantity]
    content: list[str]
    price: Price
    giftable: bool
    starts_at: str | None
    ends_at: str | None
    stock_total: int | None
    stock_sold: int
    stock_left: int | None
    is_active: bool
    version: int


class PackV1(TypedDict):
    """A pack as the deprecated /v1 shows it: flat price and currency, ``gift_allowed``."""

    pack_id: str
    name: str
    items: list[ItemQuantity]
    content: list[str]
    price: str
    currency: str
    gift_allowed: bool
    stock_total: int | None
    stock_left: int | None
    version: int


class Grant(TypedDict):
    grant_id: str
    game_id: str
    pack_id: str
    owner_id: str | None
    unlocked_by: str
    items: list[ItemQuantity]
    content: list[str]
    price: Price | None
    recipient_user_id: str | None
    burn_command_id: str | None
    burn_status: str | None
    # awaiting_payment | paid | payment_failed | refund_due | refunding | refunded
    payment_state: str | None
    payment_reason: str | None
    payment_due_at: str | None
    refund_command_id: str | None  # the mint that refunds the price
    refund_status: str | None
    authorize_url: str | None  # while awaiting_payment: the permit flow's intent
    created: bool
    created_at: str


class Stack(TypedDict):
    item_id: str
    unlocked_by: str
    quantity: int
    acquired_at: str


class Inventory(TypedDict):
    game_id: str
    owner_id: str
    items: list[Stack]
    content: list[dict[str, Any]]
    next_after: str | None


class LedgerEntry(TypedDict):
    entry_id: int
    item_id: str | None
    content_id: str | None
    delta: int
    reason: str
    unlocked_by: str
    counterparty: str | None
    at: str


class Gift(TypedDict):
    gift_id: str
    game_id: str
    sender_id: str
    recipient_id: str
    item_id: str
    quantity: int
    escrow: list[dict[str, Any]]
    message: str
    status: Literal["offered", "accepted", "declined", "cancelled", "expired"]
    offered_at: str
    expires_at: str
    decided_at: str | None


class Achievement(TypedDict):
    achievement_id: str
    name: str
    description: str
    metric: str
    threshold: int
    rewards: Rewards
    is_active: bool
    version: int


class PlayerProgress(TypedDict):
    game_id: str
    player_id: str
    achievements: list[dict[str, Any]]
    battle_passes: list[dict[str, Any]]


def new_key() -> str:
    """A fresh idempotency key (keep it to retry the same request later)."""
    return str(uuid.uuid4())


def _drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag else {}


class Definitions(Generic[T]):
    """CRUD of one kind of versioned definition under ``path``."""

    def __init__(self, transport: Transport, path: str, plural: str, id_field: str) -> None:
        self.t = transport
        self.path = path
        self.plural = plural
        self.id_field = id_field

    def list(
        self,
        *,
        game_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
        **filters: Any,
    ) -> tuple[list[T], str | None]:
        """One page and the cursor of the next (None: the last page)."""
        params = _drop_none({"game_id": game_id, "after": after, "limit": limit, **filters})
        body = self.t.request("GET", self.path, params=params).json()
        return cast(list[T], body[self.plural]), body["next_after"]

    def iterate(
        self, *, game_id: str | None = None, page_size: int = 100, **filters: Any
    ) -> Iterator[T]:
        """Every definition, page after page."""
        after: str | None = None
        while True:
            rows, after = self.list(game_id=game_id, after=after, limit=page_size, **filters)
            yield from rows
            if after is None:
                return

    def get(self, object_id: str, *, game_id: str | None = None) -> Tagged[T]:
        response = self.t.request(
            "GET", f"{self.path}/{object_id}", params=_drop_none({"game_id": game_id})
        )
        return Tagged(cast(T, response.json()), response.headers["ETag"])

    def create(self, object_id: str, spec: Mapping[str, Any]) -> Tagged[T]:
        response = self.t.request("POST", self.path, json={self.id_field: object_id, **spec})
        return Tagged(cast(T, response.json()), response.headers["ETag"])

    def replace(
        self, object_id: str, spec: Mapping[str, Any], *, if_match: str | None = None
    ) -> Tagged[T]:
        response = self.t.request(
            "PUT", f"{self.path}/{object_id}", json=dict(spec), headers=_if_match(if_match)
        )
        return Tagged(cast(T, response.json()), response.headers["ETag"])

    def archive(self, object_id: str, *, if_match: str | None = None) -> None:
        self.t.request("DELETE", f"{self.path}/{object_id}", headers=_if_match(if_match))


class Packs(Definitions[Pack]):
    """/v2/catalog/packs, and buying one."""

    def purchase(
        self,
        pack_id: str,
        *,
        game_id: str,
        idempotency_key: str,
        recipient_user_id: str | None = None,
    ) -> Grant:
        """Buy for yourself or as a gift; the same key answers the same grant forever."""
        body = _drop_none({"game_id": game_id, "recipient_user_id": recipient_user_id})
        response = self.t.request(
            "POST",
            f"{self.path}/{pack_id}/purchase",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
            retry=True,
        )
        return cast(Grant, response.json())


class PacksV1(Definitions[PackV1]):
    """The deprecated /v1/catalog/packs (``Deprecation``/``Sunset`` on every answer)."""

    def purchase(
        self, pack_id: str, *, game_id: str, idempotency_key: str, gift_to: str | None = None
    ) -> dict[str, Any]:
        response = self.t.request(
            "POST",
            f"{self.path}/{pack_id}/purchase",
            json=_drop_none({"game_id": game_id, "gift_to": gift_to}),
            headers={"Idempotency-Key": idempotency_key},
            retry=True,
        )
        return cast(dict[str, Any], response.json())


class InventoryAPI:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def mine(
        self,
        game_id: str,
        *,
        item_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Inventory:
        params = _drop_none(
            {"game_id": game_id, "item_id": item_id, "after": after, "limit": limit}
        )
        return cast(Inventory, self.t.request("GET", "/v1/inventory", params=params).json())

    def of_user(
        self,
        user_id: str,
        *,
        item_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Inventory:
        """A user's inventory in the key's game (game key)."""
        params = _drop_none({"item_id": item_id, "after": after, "limit": limit})
        return cast(
            Inventory, self.t.request("GET", f"/v1/inventory/users/{user_id}", params=params).json()
        )

    def grants(self, game_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        body = self.t.request(
            "GET", "/v1/inventory/grants", params={"game_id": game_id, "limit": limit}
        ).json()
        return cast(list[dict[str, Any]], body["grants"])

    def history(
        self,
        game_id: str,
        *,
        item_id: str | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> list[LedgerEntry]:
        params = _drop_none(
            {"game_id": game_id, "item_id": item_id, "after": after, "limit": limit}
        )
        return cast(
            list[LedgerEntry],
            self.t.request("GET", "/v1/inventory/history", params=params).json()["entries"],
        )

    def consume(
        self, user_id: str, item_id: str, quantity: int = 1, *, idempotency_key: str
    ) -> bool:
        """Spend a consumable item of a user (game key); False when the key was used before."""
        response = self.t.request(
            "POST",
            f"/v1/inventory/users/{user_id}/consume",
            json={"item_id": item_id, "quantity": quantity},
            headers={"Idempotency-Key": idempotency_key},
            retry=True,
        )
        return bool(response.json()["consumed"])


class GiftsAPI:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def offer(
        self,
        *,
        game_id: str,
        recipient_user_id: str,
        item_id: str,
        quantity: int = 1,
        message: str = "",
        idempotency_key: str,
    ) -> Gift:
        response = self.t.request(
            "POST",
            "/v1/gifts",
            json={
                "game_id": game_id,
                "recipient_user_id": recipient_user_id,
                "item_id": item_id,
                "quantity": quantity,
                "message": message,
            },
            headers={"Idempotency-Key": idempotency_key},
            retry=True,
        )
        return cast(Gift, response.json())

    def list(
        self,
        game_id: str,
        *,
        direction: Literal["received", "sent"] = "received",
        status: str | None = None,
        limit: int = 50,
    ) -> list[Gift]:
        params = _drop_none(
            {"game_id": game_id, "direction": direction, "status": status, "limit": limit}
        )
        return cast(list[Gift], self.t.request("GET", "/v1/gifts", params=params).json()["gifts"])

    def get(self, gift_id: str) -> Gift:
        return cast(Gift, self.t.request("GET", f"/v1/gifts/{gift_id}").json())

    def _decide(self, gift_id: str, action: str) -> Gift:
        # Deciding twice answers the gift unchanged: safe to retry.
        return cast(
            Gift, self.t.request("POST", f"/v1/gifts/{gift_id}/{action}", retry=True).json()
        )

    def accept(self, gift_id: str) -> Gift:
        return self._decide(gift_id, "accept")

    def decline(self, gift_id: str) -> Gift:
        return self._decide(gift_id, "decline")

    def cancel(self, gift_id: str) -> Gift:
        return self._decide(gift_id, "cancel")


class Achievements(Definitions[Achievement]):
    def of_player(self, player_id: str) -> PlayerProgress:
        """A player's achievements and battle passes (game key)."""
        return cast(
            PlayerProgress,
            self.t.request("GET", f"{self.path}/progress/players/{player_id}").json(),
        )

    def mine(self, game_id: str) -> PlayerProgress:
        """The signed-in user's linked player's progress (app user)."""
        return cast(
            PlayerProgress,
            self.t.request("GET", f"{self.path}/progress/me", params={"game_id": game_id}).json(),
        )


class EconomyClient:
    """Every economy route; one per transport (a game key's or an app user's)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.items: Definitions[Item] = Definitions(
            transport, "/v1/catalog/items", "items", "item_id"
        )
        self.content: Definitions[Content] = Definitions(
            transport, "/v1/catalog/content", "content", "content_id"
        )
        self.packs = Packs(transport, "/v2/catalog/packs", "packs", "pack_id")
        self.packs_v1 = PacksV1(transport, "/v1/catalog/packs", "packs", "pack_id")
        self.inventory = InventoryAPI(transport)
        self.gifts = GiftsAPI(transport)
        self.achievements = Achievements(
            transport, "/v1/achievements", "achievements", "achievement_id"
        )
