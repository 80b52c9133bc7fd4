"""Assets, their versions and release channels: the data access the routes and the CLI call.

Every function takes a ``Session`` inside the caller's transaction and answers views
(frozen dataclasses), never ORM rows. A game sees only its own assets. Assets and channels
are written with optimistic concurrency: the caller names the ``row_version`` it read (a
:class:`~core.platform.versions.Precondition`, the API's ``If-Match``) and a stale one is
refused (:class:`~core.platform.versions.StaleVersion`), so two editors never overwrite
each other unknowingly. Versions are created by completed uploads
only (:mod:`core.content.uploads`) and never change.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.content.errors import AssetNotFound, NameTaken
from core.content.models import (
    AssetKind,
    ContentAsset,
    ContentAssetVersion,
    ContentReleaseChannel,
    ContentReleaseChannelHistory,
)
from core.platform.errors import Conflict, Invalid
from core.platform.versions import Precondition, StaleVersion, check_version, etag

ASSET_NAME_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,198}[^\s\x00-\x1f\x7f])?$"
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
CHANNEL_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
PLATFORM_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
ALL_PLATFORMS = "all"
LATEST = "latest"
MAX_TAGS = 32
MAX_PAGE = 200

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # pass as ``after`` for the next page; None on the last


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, str | int) or "\x00" in str(value):
        raise Invalid("after: not a cursor this API gave (use next_cursor as it is)")
    if isinstance(value, int) and not 0 <= value < 2**63:
        raise Invalid("after: not a cursor this API gave (use next_cursor as it is)")
    return value


# ---- views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetView:
    asset_id: uuid.UUID
    game_id: str
    kind: AssetKind
    name: str
    description: str
    tags: list[str]
    row_version: int
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
    latest_version: int | None

    @property
    def etag(self) -> str:
        return etag(self.row_version)


@dataclass(frozen=True)
class VersionView:
    version_id: uuid.UUID
    asset_id: uuid.UUID
    game_id: str
    version: int
    sha256: str
    size_bytes: int
    content_type: str
    filename: str
    storage_key: str
    created_at: datetime

    @property
    def etag(self) -> str:
        """Strong ``ETag`` of the bytes: their SHA-256 (the same bytes, the same tag)."""
        return f'"{self.sha256}"'


@dataclass(frozen=True)
class ChannelView:
    channel_id: uuid.UUID
    asset_id: uuid.UUID
    name: str
    platform: str
    version_id: uuid.UUID
    version: int
    row_version: int
    updated_at: datetime

    @property
    def etag(self) -> str:
        return etag(self.row_version)


@dataclass(frozen=True)
class ChannelMove:
    id: int
    from_version: int | None
    to_version: int
    row_version: int
    moved_by: str
    reason: str
    moved_at: datetime


def _asset_view(row: ContentAsset, latest: int | None) -> AssetView:
    return AssetView(
        row.asset_id,
        row.game_id,
        AssetKind(row.kind),
        row.name,
        row.description,
        list(row.tags),
        row.row_version,
        row.archived_at,
        row.created_at,
        row.updated_at,
        latest,
    )


def _version_view(row: ContentAssetVersion) -> VersionView:
    return VersionView(
        row.version_id,
        row.asset_id,
        row.game_id,
        row.version,
        row.sha256,
        row.size_bytes,
        row.content_type,
        row.filename,
        row.storage_key,
        row.created_at,
    )


def _latest_versions(session: Session, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not asset_ids:
        return {}
    rows = session.execute(
        select(ContentAssetVersion.asset_id, func.max(ContentAssetVersion.version))
        .where(ContentAssetVersion.asset_id.in_(asset_ids))
        .group_by(ContentAssetVersion.asset_id)
    )
    return {asset_id: version for asset_id, version in rows}


def _check_tags(tags: Sequence[str]) -> list[str]:
    if len(tags) > MAX_TAGS:
        raise Invalid(f"tags: at most {MAX_TAGS} tags")
    bad = [t for t in tags if not re.match(TAG_PATTERN, t)]
    if bad:
        raise Invalid(f"tags: {bad[0][:70]!r} is not a tag (letters, digits, _ . : -, <= 64)")
    return sorted(set(tags))


# ---- assets --------------------------------------------------------------------------------


def _asset_row(
    session: Session, game_id: str | None, asset_id: uuid.UUID, *, lock: bool = False
) -> ContentAsset:
    query = select(ContentAsset).where(ContentAsset.asset_id == asset_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(query).one_or_none()
    if row is None or (game_id is not None and row.game_id != game_id):
        raise AssetNotFound(f"no asset {asset_id} in game {game_id!r}")
    return row


def create_asset(
    session: Session,
    game_id: str,
    *,
    kind: AssetKind,
    name: str,
    description: str = "",
    tags: Sequence[str] = (),
    asset_id: uuid.UUID | None = None,
) -> tuple[AssetView, bool]:
    """A new asset, or the existing one when ``asset_id`` was created before with the same
    name and kind (a retried create); ``(view, created)``. A name is unique per game."""
    clean_tags = _check_tags(tags)
    new_id = asset_id or uuid.uuid4()
    inserted = session.execute(
        insert(ContentAsset)
        .values(
            asset_id=new_id,
            game_id=game_id,
            kind=kind,
            name=name,
            description=description,
            tags=clean_tags,
        )
        .on_conflict_do_nothing()
        .returning(ContentAsset.asset_id)
    ).scalar_one_or_none()
    if inserted is not None:
        return _asset_view(_asset_row(session, game_id, new_id), None), True
    existing = session.scalars(select(ContentAsset).where(ContentAsset.asset_id == new_id)).first()
    if (
        existing is not None
        and existing.game_id == game_id
        and existing.name == name
        and existing.kind == kind
    ):
        return get_asset(session, game_id, new_id), False
    if existing is not None:
        raise Conflict(f"asset id {new_id} is taken by another asset")
    raise NameTaken(f"game {game_id!r} already has an asset named {name!r}")


def get_asset(session: Session, game_id: str, asset_id: uuid.UUID) -> AssetView:
    row = _asset_row(session, game_id, asset_id)
    return _asset_view(row, _latest_versions(session, [asset_id]).get(asset_id))


def list_assets(
    session: Session,
    game_id: str,
    *,
    kind: AssetKind | None = None,
    tag: str | None = None,
    name_prefix: str | None = None,
    include_archived: bool = False,
    limit: int = 50,
    after: str | None = None,
) -> Page[AssetView]:
    """A game's assets by name, filtered by kind, tag and name prefix, a page at a time."""
    query = select(ContentAsset).where(ContentAsset.game_id == game_id)
    if kind is not None:
        query = query.where(ContentAsset.kind == kind)
    if tag is not None:
        query = query.where(ContentAsset.tags.contains([tag]))
    if name_prefix:
        escaped = re.sub(r"([\\%_])", r"\\\1", name_prefix)
        query = query.where(ContentAsset.name.like(f"{escaped}%", escape="\\"))
    if not include_archived:
        query = query.where(ContentAsset.archived_at.is_(None))
    last = decode_cursor(after)
    if last is not None:
        if not isinstance(last, str):
            raise Invalid("after: not a cursor of this list")
        query = query.where(ContentAsset.name > last)
    rows = list(session.scalars(query.order_by(ContentAsset.name).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    latest = _latest_versions(session, [r.asset_id for r in rows])
    items = [_asset_view(r, latest.get(r.asset_id)) for r in rows]
    return Page(items, encode_cursor(rows[-1].name) if more else None)


def update_asset(
    session: Session,
    game_id: str,
    asset_id: uuid.UUID,
    expected: Precondition | None,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Sequence[str] | None = None,
) -> AssetView:
    """Change an asset's name, description or tags if it is still at row version
    ``expected``."""
    row = _asset_row(session, game_id, asset_id, lock=True)
    check_version(row.row_version, expected, f"asset {asset_id}", required=True)
    if row.archived_at is not None:
        raise Conflict(f"asset {asset_id} is archived; it cannot change")
    changes: dict[str, Any] = {}
    if name is not None and name != row.name:
        taken = session.scalars(
            select(ContentAsset.asset_id).where(
                ContentAsset.game_id == game_id, ContentAsset.name == name
            )
        ).first()
        if taken is not None:
            raise NameTaken(f"game {game_id!r} already has an asset named {name!r}")
        changes["name"] = name
    if description is not None:
        changes["description"] = description
    if tags is not None:
        changes["tags"] = _check_tags(tags)
    if changes:
        session.execute(
            update(ContentAsset)
            .where(ContentAsset.asset_id == asset_id)
            .values(**changes, row_version=row.row_version + 1, updated_at=func.now())
        )
        session.expire(row)
    return get_asset(session, game_id, asset_id)


def archive_asset(
    session: Session, game_id: str, asset_id: uuid.UUID, expected: Precondition | None
) -> AssetView:
    """Archive an asset: hidden from lists, no new versions or channel moves. Its versions
    stay downloadable (released clients may still fetch them). Archiving twice is a no-op."""
    row = _asset_row(session, game_id, asset_id, lock=True)
    if row.archived_at is None:
        check_version(row.row_version, expected, f"asset {asset_id}", required=True)
        session.execute(
            update(ContentAsset)
            .where(ContentAsset.asset_id == asset_id)
            .values(archived_at=func.now(), row_version=row.row_version + 1, updated_at=func.now())
        )
        session.expire(row)
    return get_asset(session, game_id, asset_id)


def lock_live_asset(session: Session, game_id: str, asset_id: uuid.UUID) -> ContentAsset:
    """The asset's row, locked for a new version or a channel move; archived ones refuse."""
    row = _asset_row(session, game_id, asset_id, lock=True)
    if row.archived_at is not None:
        raise Conflict(f"asset {asset_id} is archived: it takes no new versions or moves")
    return row


# ---- versions ------------------------------------------------------------------------------


def list_versions(
    session: Session,
    game_id: str,
    asset_id: uuid.UUID,
    *,
    limit: int = 50,
    after: str | None = None,
) -> Page[VersionView]:
    """An asset's versions, newest first."""
    _asset_row(session, game_id, asset_id)
    query = select(ContentAssetVersion).where(ContentAssetVersion.asset_id == asset_id)
    last = decode_cursor(after)
    if last is not None:
        if not isinstance(last, int):
            raise Invalid("after: not a cursor of this list")
        query = query.where(ContentAssetVersion.version < last)
    rows = list(
        session.scalars(query.order_by(ContentAssetVersion.version.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([_version_view(r) for r in rows], encode_cursor(rows[-1].version) if more else None)


def get_version(
    session: Session, game_id: str | None, asset_id: uuid.UUID, version: int
) -> VersionView:
    """One version (``game_id`` None: of any game, for players' downloads)."""
    asset = _asset_row(session, game_id, asset_id)
    row = session.scalars(
        select(ContentAssetVersion).where(
            ContentAssetVersion.asset_id == asset.asset_id, ContentAssetVersion.version == version
        )
    ).one_or_none()
    if row is None:
        raise AssetNotFound(f"asset {asset_id} has no version {version}")
    return _version_view(row)


def get_version_by_id(session: Session, version_id: uuid.UUID) -> VersionView:
    row = session.get(ContentAssetVersion, version_id)
    if row is None:
        raise AssetNotFound(f"no version {version_id}")
    return _version_view(row)


def add_version(
    session: Session,
    asset: ContentAsset,
    *,
    sha256: str,
    size_bytes: int,
    content_type: str,
    filename: str,
    storage_key: str,
    upload_id: uuid.UUID,
) -> tuple[VersionView, bool]:
    """The asset's next version for these bytes, or the version that already has them
    (``(view, created)``); ``asset`` is locked (:func:`lock_live_asset`). A new version moves
    the asset's ``latest`` channel (all platforms) to it."""
    same = session.scalars(
        select(ContentAssetVersion).where(
            ContentAssetVersion.asset_id == asset.asset_id, ContentAssetVersion.sha256 == sha256
        )
    ).one_or_none()
    if same is not None:
        return _version_view(same), False
    number = (
        session.scalar(
            select(func.max(ContentAssetVersion.version)).where(
                ContentAssetVersion.asset_id == asset.asset_id
            )
        )
        or 0
    ) + 1
    row = ContentAssetVersion(
        version_id=uuid.uuid4(),
        asset_id=asset.asset_id,
        game_id=asset.game_id,
        version=number,
        sha256=sha256,
        size_bytes=size_bytes,
        content_type=content_type,
        filename=filename,
        storage_key=storage_key,
        upload_id=upload_id,
    )
    session.add(row)
    session.flush()
    _move(session, asset, LATEST, ALL_PLATFORMS, row, moved_by="upload", reason="new version")
    return _version_view(row), True


# ---- channels ------------------------------------------------------------------------------


def _channel_view(row: ContentReleaseChannel, version: int) -> ChannelView:
    return ChannelView(
        row.channel_id,
        row.asset_id,
        row.name,
        row.platform,
        row.version_id,
        version,
        row.row_version,
        row.updated_at,
    )


def _version_numbers(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not ids:
        return {}
    rows = session.execute(
        select(ContentAssetVersion.version_id, ContentAssetVersion.version).where(
            ContentAssetVersion.version_id.in_(ids)
        )
    )
    return {version_id: number for version_id, number in rows}


def list_channels(
    session: Session,
    game_id: str,
    asset_id: uuid.UUID,
    *,
    name: str | None = None,
    platform: str | None = None,
) -> list[ChannelView]:
    _asset_row(session, game_id, asset_id)
    query = select(ContentReleaseChannel).where(ContentReleaseChannel.asset_id == asset_id)
    if name is not None:
        query = query.where(ContentReleaseChannel.name == name)
    if platform is not None:
        query = query.where(ContentReleaseChannel.platform == platform)
    rows = list(
        session.scalars(
            query.order_by(ContentReleaseChannel.name, ContentReleaseChannel.platform).limit(
                MAX_PAGE
            )
        )
    )
    numbers = _version_numbers(session, [r.version_id for r in rows])
    return [_channel_view(r, numbers[r.version_id]) for r in rows]


def _channel_row(
    session: Session, asset_id: uuid.UUID, name: str, platform: str, *, lock: bool = False
) -> ContentReleaseChannel | None:
    query = select(ContentReleaseChannel).where(
        ContentReleaseChannel.asset_id == asset_id,
        ContentReleaseChannel.name == name,
        ContentReleaseChannel.platform == platform,
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def get_channel(
    session: Session, game_id: str, asset_id: uuid.UUID, name: str, platform: str
) -> ChannelView:
    _asset_row(session, game_id, asset_id)
    row = _channel_row(session, asset_id, name, platform)
    if row is None:
        raise AssetNotFound(f"asset {asset_id} has no channel {name!r} for platform {platform!r}")
    return _channel_view(row, _version_numbers(session, [row.version_id])[row.version_id])


def _move(
    session: Session,
    asset: ContentAsset,
    name: str,
    platform: str,
    version: ContentAssetVersion,
    *,
    moved_by: str,
    reason: str,
    expected: Precondition | None = None,
    check: bool = False,
) -> tuple[ContentReleaseChannel, bool]:
    """Point the channel at ``version`` (created if new); with ``check``, only from row
    version ``expected``. ``(row, changed)``; a history row per change."""
    row = _channel_row(session, asset.asset_id, name, platform, lock=True)
    if row is None:
        if check and expected is not None:
            raise StaleVersion(
                f"channel {name!r}/{platform!r} does not exist: send no If-Match to create it",
                None,
            )
        inserted = session.execute(
            insert(ContentReleaseChannel)
            .values(
                channel_id=uuid.uuid4(),
                asset_id=asset.asset_id,
                game_id=asset.game_id,
                name=name,
                platform=platform,
                version_id=version.version_id,
            )
            .on_conflict_do_nothing()
            .returning(ContentReleaseChannel.channel_id)
        ).scalar_one_or_none()
        if inserted is None:  # created meanwhile (the asset lock makes this rare)
            raise StaleVersion(
                f"channel {name!r}/{platform!r} was just created: read it, then retry", None
            )
        row = _channel_row(session, asset.asset_id, name, platform)
        assert row is not None
        from_version = None
    else:
        if check:
            what = f"channel {name!r}/{platform!r}"
            check_version(row.row_version, expected, what, required=True)
        if row.version_id == version.version_id:
            return row, False
        from_version = row.version_id
        session.execute(
            update(ContentReleaseChannel)
            .where(ContentReleaseChannel.channel_id == row.channel_id)
            .values(
                version_id=version.version_id,
                row_version=row.row_version + 1,
                updated_at=func.now(),
            )
        )
        session.refresh(row)
    session.add(
        ContentReleaseChannelHistory(
            channel_id=row.channel_id,
            asset_id=asset.asset_id,
            from_version_id=from_version,
            to_version_id=version.version_id,
            row_version=row.row_version,
            moved_by=moved_by,
            reason=reason,
        )
    )
    session.flush()
    return row, True


def move_channel(
    session: Session,
    game_id: str,
    asset_id: uuid.UUID,
    name: str,
    platform: str,
    version: int,
    expected: Precondition | None,
    *,
    moved_by: str,
    reason: str = "",
) -> tuple[ChannelView, bool]:
    """Point a channel at version number ``version``: a new channel needs no ``expected``,
    an existing one the row version it was read at. Moving to where it points already is
    a no-op (``changed`` False)."""
    asset = lock_live_asset(session, game_id, asset_id)
    target = session.scalars(
        select(ContentAssetVersion).where(
            ContentAssetVersion.asset_id == asset_id, ContentAssetVersion.version == version
        )
    ).one_or_none()
    if target is None:
        raise AssetNotFound(f"asset {asset_id} has no version {version}")
    row, changed = _move(
        session,
        asset,
        name,
        platform,
        target,
        moved_by=moved_by,
        reason=reason,
        expected=expected,
        check=True,
    )
    return _channel_view(row, target.version), changed


def channel_history(
    session: Session,
    game_id: str,
    asset_id: uuid.UUID,
    name: str,
    platform: str,
    *,
    limit: int = 50,
    after: str | None = None,
) -> Page[ChannelMove]:
    """A channel's moves, newest first."""
    channel = get_channel(session, game_id, asset_id, name, platform)
    query = select(ContentReleaseChannelHistory).where(
        ContentReleaseChannelHistory.channel_id == channel.channel_id
    )
    last = decode_cursor(after)
    if last is not None:
        if not isinstance(last, int):
            raise Invalid("after: not a cursor of this list")
        query = query.where(ContentReleaseChannelHistory.id < last)
    rows = list(
        session.scalars(query.order_by(ContentReleaseChannelHistory.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    ids = {r.to_version_id for r in rows} | {r.from_version_id for r in rows if r.from_version_id}
    numbers = _version_numbers(session, list(ids))
    items = [
        ChannelMove(
            r.id,
            numbers.get(r.from_version_id) if r.from_version_id else None,
            numbers[r.to_version_id],
            r.row_version,
            r.moved_by,
            r.reason,
            r.moved_at,
        )
        for r in rows
    ]
    return Page(items, encode_cursor(rows[-1].id) if more else None)


def resolve_channel(
    session: Session, game_id: str | None, asset_id: uuid.UUID, name: str, platform: str
) -> VersionView:
    """The version a channel serves on ``platform``: its own pointer, else the channel's
    ``all`` pointer (``game_id`` None: any game's asset, for players)."""
    _asset_row(session, game_id, asset_id)
    candidates = [platform] if platform == ALL_PLATFORMS else [platform, ALL_PLATFORMS]
    for candidate in candidates:
        row = _channel_row(session, asset_id, name, candidate)
        if row is not None:
            version = session.get(ContentAssetVersion, row.version_id)
            assert version is not None
            return _version_view(version)
    raise AssetNotFound(f"asset {asset_id} has no channel {name!r} for platform {platform!r}")
