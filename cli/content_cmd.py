"""``stride content``: a studio's game content through the public API (the typed client):
assets, versions, uploads and downloads with progress bars and resume, release channels.

Every command talks to the API (``--api-url``, default the local front door) with the game's
key (``--key`` or ``STRIDE_GAME_KEY``); downloads also take a player's token (``--token``
or ``STRIDE_USER_TOKEN``). ``stride content uploads expire`` works on the database itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from cli.content_economy_cmd import economy_app
from core.platform.config import get_settings
from stride_client import StrideAPIError, Transport
from stride_client.assets import AssetsClient, file_sha256

content_app = typer.Typer(
    help="Game content and economy: assets, versions, uploads, downloads, release channels;"
    " the catalog, packs, inventories, gifts, achievements.",
    no_args_is_help=True,
)
assets_app = typer.Typer(
    help="Assets, their versions, uploads and downloads.", no_args_is_help=True
)
channels_app = typer.Typer(
    help="Release channels (latest, live...) per platform.", no_args_is_help=True
)
uploads_app = typer.Typer(help="Incomplete uploads.", no_args_is_help=True)
content_app.add_typer(assets_app, name="assets")
content_app.add_typer(channels_app, name="channels")
content_app.add_typer(uploads_app, name="uploads")
# The economy's groups (catalog, packs, inventory, gifts, achievements) under the same name.
content_app.registered_groups.extend(economy_app.registered_groups)
console = Console()
err = Console(stderr=True)


@dataclass
class _Api:
    url: str | None
    key: str | None
    token: str | None


@content_app.callback()
def _options(
    ctx: typer.Context,
    api_url: Annotated[
        str | None, typer.Option(help="The API's public URL (default: the local front door).")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            envvar="STRIDE_GAME_KEY", help="The game's API key (studio calls).", show_default=False
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="STRIDE_USER_TOKEN",
            help="A player's token (downloads, inventory, purchases, gifts).",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = _Api(api_url, key, token)


@contextmanager
def _client(ctx: typer.Context, *, player_ok: bool = False) -> Iterator[AssetsClient]:
    api: _Api = ctx.obj
    if not api.key and not (player_ok and api.token):
        needs = "--key (or STRIDE_GAME_KEY)" + (" or --token" if player_ok else "")
        err.print(f"[bold red]error:[/] give the game's API key: {needs}")
        raise typer.Exit(2)
    url = api.url or get_settings().api_url
    try:
        with Transport(url, game_key=api.key, user_token=None if api.key else api.token) as t:
            yield AssetsClient(t)
    except StrideAPIError as exc:
        err.print(f"[bold red]error:[/] {exc.status_code} {exc.code}: {exc.detail}")
        raise typer.Exit(1) from None


def _print(value: Any, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(value, default=str))
    else:
        for field, item in value.items():
            console.print(f"[bold]{field}[/]: {item}")


AssetArg = Annotated[uuid.UUID, typer.Argument(help="The asset's id.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PlatformOpt = Annotated[str, typer.Option(help="'all' or one platform (ios, android...).")]


# ---- assets --------------------------------------------------------------------------------


@assets_app.command("create")
def create(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="model, texture, audio, video, config, ...")],
    name: Annotated[str, typer.Argument(help="Unique in the game, e.g. hero/mesh.glb.")],
    description: Annotated[str, typer.Option(help="One line about it.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeat for more).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an asset (its versions come from uploads)."""
    with _client(ctx) as content:
        asset = content.create_asset(kind, name, description=description, tags=tag or [])
    _print(asdict(asset), as_json)


@assets_app.command("list")
def list_(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only assets with this tag.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Only names starting so.")] = None,
    archived: Annotated[bool, typer.Option(help="Include archived assets.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The game's assets by name (every page)."""
    with _client(ctx) as content:
        found = list(content.iter_assets(kind=kind, tag=tag, q=prefix, include_archived=archived))
    if as_json:
        console.print_json(json.dumps([asdict(a) for a in found], default=str))
        return
    table = Table("asset_id", "name", "kind", "tags", "latest", "archived")
    for a in found:
        table.add_row(
            str(a.asset_id),
            a.name,
            a.kind,
            ",".join(a.tags),
            str(a.latest_version or "-"),
            "yes" if a.archived_at else "",
        )
    console.print(table)


@assets_app.command("show")
def show(ctx: typer.Context, asset_id: AssetArg, as_json: JsonOpt = False) -> None:
    """One asset and its ETag."""
    with _client(ctx) as content:
        _print(asdict(content.get_asset(asset_id)), as_json)


@assets_app.command("update")
def update(
    ctx: typer.Context,
    asset_id: AssetArg,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="The tags (replace them all).")] = None,
    etag: Annotated[
        str | None, typer.Option(help="The ETag you read (default: read it now).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rename, describe or tag an asset (refused when it changed since --etag)."""
    with _client(ctx) as content:
        current = etag or content.get_asset(asset_id).etag
        asset = content.update_asset(
            asset_id, current, name=name, description=description, tags=tag
        )
    _print(asdict(asset), as_json)


@assets_app.command("archive")
def archive(
    ctx: typer.Context,
    asset_id: AssetArg,
    etag: Annotated[str | None, typer.Option(help="The ETag you read (default: now).")] = None,
) -> None:
    """Archive an asset: no new versions or moves; its versions stay downloadable."""
    with _client(ctx) as content:
        asset = content.archive_asset(asset_id, etag or content.get_asset(asset_id).etag)
    console.print(f"archived {asset.name} ({asset.asset_id})")


@assets_app.command("versions")
def versions(ctx: typer.Context, asset_id: AssetArg, as_json: JsonOpt = False) -> None:
    """An asset's versions, newest first."""
    found = []
    with _client(ctx) as content:
        after = None
        while True:
            page = content.list_versions(asset_id, limit=200, after=after)
            found += page.items
            if not (after := page.next_cursor):
                break
    if as_json:
        console.print_json(json.dumps([asdict(v) for v in found], default=str))
        return
    table = Table("version", "size", "content type", "sha256", "created")
    for v in found:
        table.add_row(
            str(v.version), f"{v.size_bytes:,}", v.content_type, v.sha256[:16], str(v.created_at)
        )
    console.print(table)


def _bar() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _resume_file(path: Path) -> Path:
    return path.with_name(path.name + ".stride-upload")


def _saved_upload(path: Path, asset_id: uuid.UUID) -> str | None:
    """The URL of an unfinished upload of this very file to this asset, if one was kept."""
    state = _resume_file(path)
    if not state.exists():
        return None
    saved = json.loads(state.read_text())
    stat = path.stat()
    same = (saved.get("asset_id"), saved.get("size"), saved.get("mtime_ns")) == (
        str(asset_id),
        stat.st_size,
        stat.st_mtime_ns,
    )
    return str(saved["url"]) if same else None


@assets_app.command("upload")
def upload(
    ctx: typer.Context,
    asset_id: AssetArg,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The file.")],
    content_type: Annotated[
        str | None, typer.Option(help="Its media type (default: from the name).")
    ] = None,
    chunk_mb: Annotated[int, typer.Option(min=1, max=1024, help="MiB per PATCH.")] = 64,
    restart: Annotated[bool, typer.Option(help="Start over instead of resuming.")] = False,
) -> None:
    """Upload a file as the asset's next version (tus; an interrupted upload resumes when
    run again: its URL is kept beside the file in FILE.stride-upload)."""
    state = _resume_file(file)
    with _client(ctx) as content, _bar() as bar:
        resume = None if restart else _saved_upload(file, asset_id)
        task = bar.add_task("hashing", total=file.stat().st_size)
        sha = None
        if resume is None:
            sha = file_sha256(file, lambda done, _total: bar.update(task, completed=done))
        bar.update(task, description="resuming" if resume else "uploading", completed=0)

        def keep(url: str) -> None:
            stat = file.stat()
            state.write_text(
                json.dumps(
                    {
                        "url": url,
                        "asset_id": str(asset_id),
                        "size": stat.st_size,
                        "mtime_ns": stat.st_mtime_ns,
                    }
                )
            )

        def moved(done: int, _total: int) -> None:
            bar.update(task, completed=done)

        try:
            result = content.upload(
                asset_id,
                file,
                content_type=content_type,
                resume_url=resume,
                on_created=keep,
                chunk_bytes=chunk_mb << 20,
                progress=moved,
                sha256=sha,
            )
        except StrideAPIError as exc:
            if exc.status_code in (404, 409, 410, 460):
                state.unlink(missing_ok=True)  # that upload cannot be resumed
            raise
    state.unlink(missing_ok=True)
    if result.status != "completed":
        err.print(f"[bold red]error:[/] the upload ended {result.status}: {result.failure_reason}")
        raise typer.Exit(1)
    console.print(f"version {result.version} of {asset_id} ({file.stat().st_size:,} bytes)")


@assets_app.command("download")
def download(
    ctx: typer.Context,
    asset_id: AssetArg,
    dest: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write the file.")],
    version: Annotated[int | None, typer.Option(help="A version number.")] = None,
    channel: Annotated[str | None, typer.Option(help="Or what a channel serves.")] = None,
    platform: PlatformOpt = "all",
) -> None:
    """Download a version or what a channel serves; an interrupted download resumes from
    DEST.part when run again (Range + If-Range), the SHA-256 checked at the end."""
    if (version is None) == (channel is None):
        err.print("[bold red]error:[/] give --version N or --channel NAME")
        raise typer.Exit(2)
    with _client(ctx, player_ok=True) as content, _bar() as bar:
        task = bar.add_task("downloading", total=None)

        def moved(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        got = content.download(
            asset_id, dest, version=version, channel=channel, platform=platform, progress=moved
        )
    resumed = f", {got.resumed_from:,} bytes resumed" if got.resumed_from else ""
    served = f" (version {got.version})" if got.version else ""
    console.print(f"{dest}: {got.size_bytes:,} bytes{served}, sha256 {got.sha256}{resumed}")


# ---- channels ------------------------------------------------------------------------------


@channels_app.command("list")
def channels_list(
    ctx: typer.Context,
    asset_id: AssetArg,
    name: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    platform: Annotated[str | None, typer.Option(help="Only this platform.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """An asset's channels and the versions they point at."""
    with _client(ctx) as content:
        found = content.list_channels(asset_id, name=name, platform=platform)
    if as_json:
        console.print_json(json.dumps([asdict(c) for c in found], default=str))
        return
    table = Table("channel", "platform", "version", "etag", "updated")
    for c in found:
        table.add_row(c.name, c.platform, str(c.version), c.etag, str(c.updated_at))
    console.print(table)


@channels_app.command("show")
def channels_show(
    ctx: typer.Context,
    asset_id: AssetArg,
    name: Annotated[str, typer.Argument(help="e.g. live.")],
    platform: PlatformOpt = "all",
    as_json: JsonOpt = False,
) -> None:
    """One channel and its ETag."""
    with _client(ctx) as content:
        _print(asdict(content.get_channel(asset_id, name, platform=platform)), as_json)


@channels_app.command("move")
def channels_move(
    ctx: typer.Context,
    asset_id: AssetArg,
    name: Annotated[str, typer.Argument(help="e.g. live.")],
    version: Annotated[int, typer.Argument(help="The version to point at.")],
    platform: PlatformOpt = "all",
    reason: Annotated[str, typer.Option(help="Kept in the history.")] = "",
    etag: Annotated[
        str | None,
        typer.Option(help="The channel's ETag you read (default: read it now; none if new)."),
    ] = None,
) -> None:
    """Point a channel at a version (refused when it moved since --etag)."""
    with _client(ctx) as content:
        if etag is None:
            existing = content.list_channels(asset_id, name=name, platform=platform)
            etag = existing[0].etag if existing else None
        moved = content.move_channel(
            asset_id, name, version, etag=etag, platform=platform, reason=reason
        )
    console.print(f"{moved.name}/{moved.platform} -> version {moved.version} ({moved.etag})")


@channels_app.command("history")
def channels_history(
    ctx: typer.Context,
    asset_id: AssetArg,
    name: Annotated[str, typer.Argument(help="e.g. live.")],
    platform: PlatformOpt = "all",
    as_json: JsonOpt = False,
) -> None:
    """Every move of a channel, newest first."""
    moves = []
    with _client(ctx) as content:
        after = None
        while True:
            page = content.channel_history(
                asset_id, name, platform=platform, limit=200, after=after
            )
            moves += page.items
            if not (after := page.next_cursor):
                break
    if as_json:
        console.print_json(json.dumps([asdict(m) for m in moves], default=str))
        return
    table = Table("moved at", "from", "to", "by", "reason")
    for m in moves:
        table.add_row(
            str(m.moved_at), str(m.from_version or "-"), str(m.to_version), m.moved_by, m.reason
        )
    console.print(table)


# ---- uploads -------------------------------------------------------------------------------


@uploads_app.command("expire")
def uploads_expire() -> None:
    """Expire incomplete uploads past their expiry now and delete their bytes (the API also
    does it by itself, at most every STRIDE_CONTENT_UPLOAD_CLEANUP_INTERVAL_S)."""
    from core.content.storage import storage_for
    from core.content.uploads import expire_uploads
    from core.platform.db import engine_for

    settings = get_settings()
    count = expire_uploads(
        engine_for(settings.db_url),
        storage_for(settings),
        datetime.now(UTC),
        spool_older_than_s=settings.content_upload_expiry_s,
    )
    console.print(f"{count} incomplete uploads expired")
