"""Storage keys and the local folder store: content-addressed version keys, parts composed
while hashed, ranged reads, promotion that never overwrites stored bytes."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from core.content.assets import decode_cursor, encode_cursor
from core.content.storage import (
    LocalStorage,
    assembled_key,
    check_key,
    clean_spool,
    storage_for,
    upload_part_key,
    upload_prefix,
    version_key,
)
from core.content.uploads import HashStates
from core.platform.config import Settings
from core.platform.errors import Invalid

SHA = hashlib.sha256(b"").hexdigest()


def test_keys_follow_the_raw_zone_conventions_and_stay_inside_the_root() -> None:
    assert version_key("space-duel", SHA) == f"game_id=space-duel/{SHA}"
    upload_id = uuid.uuid4()
    part = upload_part_key(upload_id, 42)
    assert part.startswith(f"{upload_prefix(upload_id)}/00000000000000000042-")
    assert part != upload_part_key(upload_id, 42)  # a lost race never clashes
    assert assembled_key(upload_id) == f"_uploads/{upload_id}/assembled"
    for bad in ("../etc/passwd", "/abs", "a//b", "a/./b", "a b"):
        with pytest.raises(ValueError):
            check_key(bad)
    with pytest.raises(ValueError):
        version_key("../x", SHA)
    with pytest.raises(ValueError):
        version_key("game", "not-a-sha")


def test_the_default_root_is_the_lakes_raw_zone_and_s3a_is_s3(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert settings.content_root == f"{tmp_path}/lake/raw/content"
    assert isinstance(storage_for(settings), LocalStorage)
    on_s3 = Settings(state_dir=tmp_path, lake_uri="s3a://lake-bucket/lake")
    assert on_s3.content_root == "s3://lake-bucket/lake/raw/content"
    moved = Settings(state_dir=tmp_path, content_storage_uri="s3a://assets/prod/")
    assert moved.content_root == "s3://assets/prod"


def test_parts_compose_into_one_hashed_object_then_promote(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "content")
    upload_id = uuid.uuid4()
    parts = []
    for offset, data in ((0, b"hello "), (6, b"world")):
        spool = tmp_path / f"spool-{offset}"
        spool.write_bytes(data)
        key = upload_part_key(upload_id, offset)
        store.put_file(key, spool)
        assert not spool.exists()  # consumed
        parts.append(key)
    sha, size = store.compose(assembled_key(upload_id), parts)
    assert (sha, size) == (hashlib.sha256(b"hello world").hexdigest(), 11)
    target = version_key("g", sha)
    store.promote(assembled_key(upload_id), target)
    assert b"".join(store.read(target)) == b"hello world"
    assert b"".join(store.read(target, 6, 10)) == b"world"
    assert b"".join(store.read(target, 0, 0)) == b"h"

    # Promoting other bytes onto a stored key keeps what is stored (content-addressed).
    spool = tmp_path / "again"
    spool.write_bytes(b"tampered")
    store.put_file(assembled_key(upload_id), spool)
    store.promote(assembled_key(upload_id), target)
    assert b"".join(store.read(target)) == b"hello world"
    assert not store.exists(assembled_key(upload_id))
    assert store.delete_prefix(upload_prefix(upload_id)) == 2
    assert store.delete_prefix(upload_prefix(upload_id)) == 0


def test_cursors_round_trip_and_refuse_foreign_values() -> None:
    assert decode_cursor(encode_cursor("sfx/hit")) == "sfx/hit"
    assert decode_cursor(encode_cursor(12)) == 12
    with pytest.raises(Invalid, match="cursor"):
        decode_cursor("!!!")


def test_orphaned_spool_files_are_deleted_once_old(tmp_path: Path) -> None:
    import os

    store = LocalStorage(tmp_path / "content")
    assert clean_spool(store, 60) == 0  # no spool yet
    store.spool_dir.mkdir(parents=True)
    old, fresh = store.spool_dir / "patch-old", store.spool_dir / "patch-fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (1_000, 1_000))
    os.utime(fresh, (5_000, 5_000))
    assert clean_spool(store, 60, now_s=5_010) == 1
    assert not old.exists() and fresh.exists()


def test_one_part_becomes_the_object_by_a_link_and_several_are_concatenated(
    tmp_path: Path,
) -> None:
    store = LocalStorage(tmp_path / "content")
    upload_id = uuid.uuid4()
    spool = tmp_path / "only"
    spool.write_bytes(b"one part")
    only = upload_part_key(upload_id, 0)
    store.put_file(only, spool)
    sha, size = store.compose(assembled_key(upload_id), [only])
    assert (sha, size) == (hashlib.sha256(b"one part").hexdigest(), 8)
    part_file = tmp_path / "content" / only
    assembled = tmp_path / "content" / assembled_key(upload_id)
    assert part_file.stat().st_ino == assembled.stat().st_ino  # no copy
    # A composition cut off midway runs again: the part is still there.
    assert store.compose(assembled_key(upload_id), [only]) == (sha, size)

    other = uuid.uuid4()
    blocks = [os.urandom(n) for n in (3 << 20, 1, 70_000)]
    keys, offset = [], 0
    for block in blocks:
        spool = tmp_path / f"spool-{offset}"
        spool.write_bytes(block)
        keys.append(upload_part_key(other, offset))
        store.put_file(keys[-1], spool)
        offset += len(block)
    whole = b"".join(blocks)
    assert store.compose(assembled_key(other), keys) == (hashlib.sha256(whole).hexdigest(), offset)
    assert (tmp_path / "content" / assembled_key(other)).read_bytes() == whole
    # The SHA-256 the API took as the bytes arrived is not taken again.
    given = hashlib.sha256(whole).hexdigest()
    assert store.compose(assembled_key(other), keys, given) == (given, offset)


def test_hash_states_follow_recorded_parts_only() -> None:
    states = HashStates(capacity=2)
    upload_id = uuid.uuid4()
    first = states.resume(upload_id, 0)
    first.update(b"hello ")
    states.advance(upload_id, 0, 6, first)
    winner, loser = states.resume(upload_id, 6), states.resume(upload_id, 6)
    loser.update(b"lost race")  # never advanced: changes nothing
    winner.update(b"world")
    states.advance(upload_id, 6, 11, winner)
    assert states.resume(upload_id, 6) is None  # moved on
    assert states.take(upload_id, 11) == hashlib.sha256(b"hello world").hexdigest()
    assert states.take(upload_id, 11) is None  # taken once
    assert states.resume(uuid.uuid4(), 5) is None  # another process's upload: unknown
    for _ in range(3):  # the oldest go first
        states.advance(uuid.uuid4(), 0, 1, hashlib.sha256(b"x"))
    assert len(states._states) == 2
