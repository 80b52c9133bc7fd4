"""``stride content catalog|packs|inventory|gifts|achievements``: the economy through the
public API with the typed client (:mod:`stride_client.economy`), as a studio (``--game-key``)
or a player (``--token``).

``economy_app`` is mounted under ``stride content``. Definitions are given as JSON (an
argument, or ``--file``); ``update`` sends the ETag it just read unless ``--if-match`` names
one, so a change made by someone else in between is refused (412) instead of overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.platform.config import get_settings
from stride_client import StrideAPIError, Transport
from stride_client.economy import Definitions, EconomyClient, new_key

economy_app = typer.Typer(
    help="The economy: catalog, packs, inventories, gifts, achievements (through the API).",
    no_args_is_help=True,
)
catalog_app = typer.Typer(help="The catalog: items and content (studio).", no_args_is_help=True)
items_app = typer.Typer(help="Catalog items.", no_args_is_help=True)
content_app = typer.Typer(help="Unlockable content and battle-pass seasons.", no_args_is_help=True)
packs_app = typer.Typer(help="Packs (/v2) and buying them.", no_args_is_help=True)
inventory_app = typer.Typer(
    help="Inventories: yours (token) or a user's (game key).", no_args_is_help=True
)
gifts_app = typer.Typer(help="Gifts between users (token).", no_args_is_help=True)
achievements_app = typer.Typer(help="Achievements and progress.", no_args_is_help=True)
economy_app.add_typer(catalog_app, name="catalog")
catalog_app.add_typer(items_app, name="items")
catalog_app.add_typer(content_app, name="content")
economy_app.add_typer(packs_app, name="packs")
economy_app.add_typer(inventory_app, name="inventory")
economy_app.add_typer(gifts_app, name="gifts")
economy_app.add_typer(achievements_app, name="achievements")

console = Console()
err = Console(stderr=True)


@economy_app.callback()
def connect(
    ctx: typer.Context,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="The API (default: the local stack's).")
    ] = None,
    game_key: Annotated[
        str | None,
        typer.Option("--game-key", envvar="STRIDE_GAME_KEY", help="A game's API key (studio)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="STRIDE_USER_TOKEN", help="An app user's token (player)."),
    ] = None,
) -> None:
    """Say who you are: a studio's --game-key, or a player's --token."""
    url = api_url or get_settings().api_url
    ctx.obj = EconomyClient(Transport(url, game_key=game_key, user_token=token))
    ctx.call_on_close(ctx.obj.transport.close)


def _client(ctx: typer.Context) -> EconomyClient:
    found = ctx.find_root().obj if ctx.obj is None else ctx.obj
    if isinstance(found, EconomyClient):
        return found
    # Mounted under `stride content`: its --api-url, --key and --token say who you are.
    url = getattr(found, "url", None) or get_settings().api_url
    client = EconomyClient(
        Transport(
            url, game_key=getattr(found, "key", None), user_token=getattr(found, "token", None)
        )
    )
    ctx.call_on_close(client.transport.close)
    ctx.obj = client
    return client


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


def _call(work: Callable[[], Any]) -> Any:
    """The API's answer, or its refusal printed as detail (code) with exit status 1."""
    try:
        return work()
    except StrideAPIError as refusal:
        hint = {401: " (pass --game-key or --token)", 403: " (another credential?)"}
        _fail(f"{refusal.detail} [{refusal.code}]{hint.get(refusal.status_code, '')}")


def _spec(text: str | None, file: Path | None) -> dict[str, Any]:
    if (text is None) == (file is None):
        _fail("give the definition as one JSON argument or --file PATH (one of them)")
    raw = file.read_text() if file is not None else text
    try:
        value = json.loads(raw or "")
    except ValueError as exc:
        _fail(f"the definition is not JSON: {exc}")
    if not isinstance(value, dict):
        _fail("the definition must be a JSON object")
    return value


def _show(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


SpecArg = Annotated[str | None, typer.Argument(help="The definition as JSON.")]
FileOpt = Annotated[Path | None, typer.Option("--file", help="Read the JSON definition from here.")]
GameOpt = Annotated[
    str | None, typer.Option("--game", help="The game (with --token; a game key implies it).")
]
IfMatchOpt = Annotated[
    str | None, typer.Option("--if-match", help='The ETag to expect, e.g. "3" (default: current).')
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", help="Idempotency key: reuse it to retry safely (default: a new one)."),
]


def _definition_commands(
    app: typer.Typer,
    noun: str,
    kind: Callable[[EconomyClient], Definitions[Any]],
    columns: tuple[str, ...],
) -> None:
    """list / show / create / update / archive of one kind of versioned definition."""

    @app.command("list")
    def list_(ctx: typer.Context, game: GameOpt = None, include_archived: bool = False) -> None:
        """Every definition (all pages)."""
        defs = kind(_client(ctx))
        extra = {"include_archived": True} if include_archived else {}
        rows = _call(lambda: list(defs.iterate(game_id=game, **extra)))
        table = Table(*columns)
        for row in rows:
            table.add_row(*(str(row.get(c, "")) for c in columns))
        console.print(table)

    @app.command("show")
    def show(ctx: typer.Context, object_id: str, game: GameOpt = None) -> None:
        """One definition as JSON, with its ETag."""
        tagged = _call(lambda: kind(_client(ctx)).get(object_id, game_id=game))
        _show(tagged.value)
        err.print(f"ETag {tagged.etag}")

    @app.command("create")
    def create(
        ctx: typer.Context, object_id: str, spec: SpecArg = None, file: FileOpt = None
    ) -> None:
        """Create one (game key)."""
        body = _spec(spec, file)
        tagged = _call(lambda: kind(_client(ctx)).create(object_id, body))
        console.print(f"created {noun} {object_id} (ETag {tagged.etag})")

    @app.command("update")
    def update(
        ctx: typer.Context,
        object_id: str,
        spec: SpecArg = None,
        file: FileOpt = None,
        if_match: IfMatchOpt = None,
    ) -> None:
        """Replace one (game key), refused if it changed since the ETag."""
        body = _spec(spec, file)
        defs = kind(_client(ctx))
        expected = if_match or _call(lambda: defs.get(object_id)).etag
        tagged = _call(lambda: defs.replace(object_id, body, if_match=expected))
        console.print(f"updated {noun} {object_id} (ETag {tagged.etag})")

    @app.command("archive")
    def archive(ctx: typer.Context, object_id: str, if_match: IfMatchOpt = None) -> None:
        """Archive one (game key): no longer listed, sold or granted; owners keep theirs."""
        _call(lambda: kind(_client(ctx)).archive(object_id, if_match=if_match))
        console.print(f"archived {noun} {object_id}")


_definition_commands(
    items_app,
    "item",
    lambda c: c.items,
    ("item_id", "name", "stackable", "max_count", "consumable", "giftable", "version"),
)
_definition_commands(
    content_app,
    "content",
    lambda c: c.content,
    ("content_id", "kind", "name", "starts_at", "ends_at", "version"),
)
_definition_commands(
    packs_app,
    "pack",
    lambda c: c.packs,
    ("pack_id", "name", "price", "stock_left", "giftable", "version"),
)
_definition_commands(
    achievements_app,
    "achievement",
    lambda c: c.achievements,
    ("achievement_id", "name", "metric", "threshold", "version"),
)


@packs_app.command("buy")
def buy(
    ctx: typer.Context,
    pack_id: str,
    game: Annotated[str, typer.Option("--game", help="The pack's game.")],
    gift_to: Annotated[
        str | None, typer.Option("--for", help="Buy it as a gift for this user.")
    ] = None,
    key: KeyOpt = None,
) -> None:
    """Buy a pack (token), for yourself or --for another user; once per --key."""
    idempotency_key = key or new_key()
    grant = _call(
        lambda: _client(ctx).packs.purchase(
            pack_id, game_id=game, idempotency_key=idempotency_key, recipient_user_id=gift_to
        )
    )
    _show(grant)
    if not grant["created"]:
        err.print("this key was used before: that purchase, nothing granted again")


@inventory_app.command("show")
def inventory_show(
    ctx: typer.Context,
    game: Annotated[str | None, typer.Option("--game", help="Your game (with --token).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="A user's (with --game-key).")] = None,
) -> None:
    """Your inventory (token, --game) or a user's in the key's game (--user)."""
    client = _client(ctx)
    if (game is None) == (user is None):
        _fail("give --game (your inventory, with --token) or --user (with --game-key)")
    inventory = _call(
        lambda: client.inventory.of_user(user) if user else client.inventory.mine(str(game))
    )
    table = Table("item_id", "quantity", "unlocked_by", "acquired_at")
    for stack in inventory["items"]:
        table.add_row(
            stack["item_id"], str(stack["quantity"]), stack["unlocked_by"], stack["acquired_at"]
        )
    console.print(table)
    for content in inventory["content"]:
        console.print(f"content {content['content_id']} (unlocked by {content['unlocked_by']})")


@inventory_app.command("history")
def inventory_history(
    ctx: typer.Context,
    game: Annotated[str, typer.Option("--game")],
    item: Annotated[str | None, typer.Option("--item")] = None,
) -> None:
    """Every change of your inventory (token): where each unit came from."""
    entries = _call(lambda: _client(ctx).inventory.history(game, item_id=item))
    table = Table("entry", "item/content", "delta", "reason", "unlocked_by", "counterparty", "at")
    for e in entries:
        table.add_row(
            str(e["entry_id"]),
            str(e["item_id"] or e["content_id"]),
            f"{e['delta']:+d}",
            e["reason"],
            e["unlocked_by"],
            str(e["counterparty"] or ""),
            e["at"],
        )
    console.print(table)


@inventory_app.command("consume")
def inventory_consume(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user")],
    item: Annotated[str, typer.Option("--item")],
    quantity: Annotated[int, typer.Option("--quantity", min=1)] = 1,
    key: KeyOpt = None,
) -> None:
    """Spend a consumable item of a user (game key); once per --key."""
    done = _call(
        lambda: _client(ctx).inventory.consume(
            user, item, quantity, idempotency_key=key or new_key()
        )
    )
    console.print("consumed" if done else "already consumed with this key: nothing changed")


@gifts_app.command("offer")
def gifts_offer(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="The recipient's user id.")],
    item: Annotated[str, typer.Option("--item")],
    game: Annotated[str, typer.Option("--game")],
    quantity: Annotated[int, typer.Option("--quantity", min=1)] = 1,
    message: Annotated[str, typer.Option("--message")] = "",
    key: KeyOpt = None,
) -> None:
    """Offer units of a giftable item (token); they wait in escrow until decided."""
    gift = _call(
        lambda: _client(ctx).gifts.offer(
            game_id=game,
            recipient_user_id=to,
            item_id=item,
            quantity=quantity,
            message=message,
            idempotency_key=key or new_key(),
        )
    )
    console.print(f"gift {gift['gift_id']} offered to {to}, expires {gift['expires_at']}")


@gifts_app.command("list")
def gifts_list(
    ctx: typer.Context,
    game: Annotated[str, typer.Option("--game")],
    sent: Annotated[
        bool, typer.Option("--sent", help="Gifts you sent (default: received).")
    ] = False,
    status: Annotated[str | None, typer.Option("--status")] = None,
) -> None:
    """Gifts you received (or --sent), newest first (token)."""
    rows = _call(
        lambda: _client(ctx).gifts.list(
            game, direction="sent" if sent else "received", status=status
        )
    )
    table = Table("gift_id", "from", "to", "item", "quantity", "status", "expires_at")
    for g in rows:
        table.add_row(
            g["gift_id"],
            g["sender_id"],
            g["recipient_id"],
            g["item_id"],
            str(g["quantity"]),
            g["status"],
            g["expires_at"],
        )
    console.print(table)


def _decision(action: str) -> Callable[[typer.Context, str], None]:
    def decide(ctx: typer.Context, gift_id: str) -> None:
        gift = _call(lambda: getattr(_client(ctx).gifts, action)(gift_id))
        console.print(f"gift {gift_id}: {gift['status']}")

    decide.__doc__ = f"{action.capitalize()} a gift (token)."
    return decide


for _action in ("accept", "decline", "cancel"):
    gifts_app.command(_action)(_decision(_action))


@achievements_app.command("progress")
def achievements_progress(
    ctx: typer.Context,
    player: Annotated[
        str | None, typer.Option("--player", help="A player (with --game-key).")
    ] = None,
    game: Annotated[
        str | None, typer.Option("--game", help="Your player's (with --token).")
    ] = None,
) -> None:
    """A player's achievements and battle passes (game key), or your player's (token)."""
    client = _client(ctx)
    if (player is None) == (game is None):
        _fail("give --player (with --game-key) or --game (your player, with --token)")
    progress = _call(
        lambda: (
            client.achievements.of_player(player) if player else client.achievements.mine(str(game))
        )
    )
    table = Table("achievement", "value", "threshold", "unlocked_at")
    for a in progress["achievements"]:
        table.add_row(
            a["achievement_id"], str(a["value"]), str(a["threshold"]), str(a["unlocked_at"] or "")
        )
    console.print(table)
    for bp in progress["battle_passes"]:
        console.print(f"battle pass {bp['content_id']}: {bp['xp']} XP, tier {bp['tier']}")
