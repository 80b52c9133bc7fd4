"""``/v1/content/assets``: CRUD with ETags, pagination and filters, versions, release
channels with history, downloads with Range/ETag/304, against the real PostgreSQL and the
local object storage."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tests.integration.content.assets_helpers import (  # noqa: F401  (fixtures)
    Studio,
    client_fixture,
    make_asset,
    new_studio,
    player_token_fixture,
    studio_fixture,
    upload,
)

pytestmark = pytest.mark.integration


def test_an_asset_is_created_once_read_with_its_etag_and_changed_only_with_it(
    client: TestClient, studio: Studio
) -> None:
    asset_id = str(uuid.uuid4())
    body = {"asset_id": asset_id, "kind": "model", "name": "hero/mesh.glb", "tags": ["hero"]}
    assert client.post("/v1/content/assets", json=body).status_code == 401
    made = client.post("/v1/content/assets", json=body, headers=studio.headers)
    assert made.status_code == 201, made.text
    retried = client.post("/v1/content/assets", json=body, headers=studio.headers)
    assert retried.status_code == 200 and retried.json()["asset_id"] == asset_id
    clash = client.post(
        "/v1/content/assets", json={**body, "asset_id": None}, headers=studio.headers
    )
    assert clash.status_code == 409 and "hero/mesh.glb" in clash.json()["detail"]

    read = client.get(f"/v1/content/assets/{asset_id}", headers=studio.headers)
    etag = read.headers["ETag"]
    assert read.json()["etag"] == etag == '"1"'
    path = f"/v1/content/assets/{asset_id}"
    blind = client.patch(path, json={"tags": ["hero", "lod0"]}, headers=studio.headers)
    assert blind.status_code == 428 and blind.json()["code"] == "precondition_required"
    changed = client.patch(
        path, json={"tags": ["lod0", "hero"]}, headers={**studio.headers, "If-Match": etag}
    )
    assert changed.status_code == 200 and changed.json()["tags"] == ["hero", "lod0"]
    assert changed.headers["ETag"] == '"2"'
    stale = client.patch(
        path, json={"description": "lost"}, headers={**studio.headers, "If-Match": etag}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    assert 'its ETag is now "2"' in stale.json()["detail"]
    assert stale.headers["ETag"] == '"2"'  # the tag to retry with, as a header too
    assert client.get(path, headers=studio.headers).json()["description"] == ""
    junk = client.patch(
        path, json={"description": "x"}, headers={**studio.headers, "If-Match": "2"}
    )
    assert junk.status_code == 400 and junk.json()["code"] == "bad_request"
    assert "If-Match" in junk.json()["detail"]
    weak = client.patch(
        path, json={"description": "x"}, headers={**studio.headers, "If-Match": 'W/"2"'}
    )
    assert weak.status_code == 412  # If-Match compares strongly
    # A client holding the tag the assets answered before ("r2") keeps working.
    old_form = client.patch(
        path, json={"description": "kept"}, headers={**studio.headers, "If-Match": '"r2"'}
    )
    assert old_form.status_code == 200 and old_form.headers["ETag"] == '"3"'
    cached = client.get(path, headers={**studio.headers, "If-None-Match": '"3"'})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["ETag"] == '"3"'
    outdated = client.get(path, headers={**studio.headers, "If-None-Match": etag})
    assert outdated.status_code == 200 and outdated.json()["description"] == "kept"

    other = new_studio()
    assert client.get(path, headers=other.headers).status_code == 404
    bad = client.post(
        "/v1/content/assets", json={"kind": "sword", "name": " x"}, headers=studio.headers
    )
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {
        "kind",
        "name",
    }


def test_assets_are_listed_by_name_a_page_at_a_time_and_filtered(
    client: TestClient, studio: Studio
) -> None:
    for i in range(5):
        make_asset(client, studio, f"sfx/hit-{i}", kind="audio", tags=["combat"] if i % 2 else [])
    make_asset(client, studio, "ui/config.json", kind="config")
    names, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = client.get("/v1/content/assets", params=params, headers=studio.headers).json()
        names += [a["name"] for a in page["items"]]
        if not (after := page["next_cursor"]):
            break
    assert names == [*(f"sfx/hit-{i}" for i in range(5)), "ui/config.json"]

    def listed(**params: str) -> list[str]:
        response = client.get("/v1/content/assets", params=params, headers=studio.headers)
        assert response.status_code == 200, response.text
        return [a["name"] for a in response.json()["items"]]

    assert listed(kind="config") == ["ui/config.json"]
    assert listed(tag="combat") == ["sfx/hit-1", "sfx/hit-3"]
    assert listed(q="sfx/hit-4") == ["sfx/hit-4"]
    assert listed(q="%") == []  # a prefix, not a pattern
    bad_cursor = client.get("/v1/content/assets", params={"after": "!!"}, headers=studio.headers)
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json()["detail"]

    [config] = client.get(
        "/v1/content/assets", params={"kind": "config"}, headers=studio.headers
    ).json()["items"]
    path = f"/v1/content/assets/{config['asset_id']}"
    archived = client.delete(path, headers={**studio.headers, "If-Match": config["etag"]})
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert listed(kind="config") == []
    assert listed(kind="config", include_archived="true") == ["ui/config.json"]


def test_versions_channels_and_downloads(
    client: TestClient, studio: Studio, player_token: str
) -> None:
    asset = make_asset(client, studio, kind="texture")
    base = f"/v1/content/assets/{asset['asset_id']}"
    first, second = os.urandom(300_000), os.urandom(1000)
    assert upload(client, studio, asset["asset_id"], first, content_type="image/png") == 1
    assert upload(client, studio, asset["asset_id"], second, filename="tex.png") == 2
    assert upload(client, studio, asset["asset_id"], first) == 1  # the same bytes: no new one

    versions = client.get(f"{base}/versions", headers=studio.headers).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["sha256"] == hashlib.sha256(first).hexdigest()
    assert versions[1]["content_type"] == "image/png" and versions[1]["size_bytes"] == 300_000
    assert client.get(f"{base}/versions/3", headers=studio.headers).status_code == 404

    # Every new version moves `latest`; `live` moves by hand, with its ETag.
    latest = client.get(f"{base}/channels/latest", headers=studio.headers)
    assert latest.json()["version"] == 2
    live = client.put(f"{base}/channels/live", json={"version": 1}, headers=studio.headers)
    assert live.status_code == 201, live.text
    blind = client.put(f"{base}/channels/live", json={"version": 2}, headers=studio.headers)
    assert blind.status_code == 428
    moved = client.put(
        f"{base}/channels/live",
        json={"version": 2, "reason": "season 2"},
        headers={**studio.headers, "If-Match": live.headers["ETag"]},
    )
    assert moved.status_code == 200 and moved.json()["version"] == 2
    stale = client.put(
        f"{base}/channels/live",
        json={"version": 1},
        headers={**studio.headers, "If-Match": live.headers["ETag"]},
    )
    assert stale.status_code == 412
    assert f"its ETag is now {moved.headers['ETag']}" in stale.json()["detail"]
    unchanged = client.get(
        f"{base}/channels/live", headers={**studio.headers, "If-None-Match": moved.headers["ETag"]}
    )
    assert unchanged.status_code == 304 and unchanged.content == b""
    ios = client.put(
        f"{base}/channels/live",
        params={"platform": "ios"},
        json={"version": 1},
        headers=studio.headers,
    )
    assert ios.status_code == 201
    history = client.get(f"{base}/channels/live/history", headers=studio.headers).json()
    assert [(m["from_version"], m["to_version"], m["reason"]) for m in history["items"]] == [
        (1, 2, "season 2"),
        (None, 1, ""),
    ]
    channels = client.get(f"{base}/channels", params={"name": "live"}, headers=studio.headers)
    assert [(c["platform"], c["version"]) for c in channels.json()] == [("all", 2), ("ios", 1)]

    # A player downloads what a channel serves on their platform (or its `all` pointer).
    player = {"Authorization": f"Bearer {player_token}"}
    on_ios = client.get(
        f"{base}/channels/live/download", params={"platform": "ios"}, headers=player
    )
    assert on_ios.status_code == 200 and on_ios.content == first
    assert on_ios.headers["Content-Location"] == f"{base}/versions/1/download"
    # never shown inline: the type is the uploader's word (a text/html upload would run)
    assert on_ios.headers["Content-Disposition"] == "attachment"
    on_android = client.get(
        f"{base}/channels/live/download", params={"platform": "android"}, headers=player
    )
    assert on_android.content == second and on_android.headers["Stride-Version"] == "2"
    assert "filename*=UTF-8''tex.png" in on_android.headers["Content-Disposition"]
    assert client.get(f"{base}/channels/live/download").status_code == 401
    other = new_studio()
    assert client.get(f"{base}/versions/1/download", headers=other.headers).status_code == 404

    # Version bytes: ETag is the SHA-256; Range, If-None-Match, If-Range.
    url = f"{base}/versions/1/download"
    whole = client.get(url, headers=studio.headers)
    etag = f'"{hashlib.sha256(first).hexdigest()}"'
    assert whole.status_code == 200 and whole.content == first and whole.headers["ETag"] == etag
    assert (
        whole.headers["Accept-Ranges"] == "bytes" and "immutable" in whole.headers["Cache-Control"]
    )
    assert whole.headers["Content-Type"] == "image/png"
    part = client.get(url, headers={**studio.headers, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == first[1000:2000]
    assert part.headers["Content-Range"] == "bytes 1000-1999/300000"
    tail = client.get(url, headers={**studio.headers, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == first[-10:]
    open_ended = client.get(url, headers={**studio.headers, "Range": "bytes=299990-"})
    assert open_ended.content == first[299990:]
    outside = client.get(url, headers={**studio.headers, "Range": "bytes=300000-"})
    assert outside.status_code == 416 and outside.headers["Content-Range"] == "bytes */300000"
    assert outside.json()["code"] == "range_not_satisfiable"
    cached = client.get(url, headers={**studio.headers, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    changed = client.get(
        url, headers={**studio.headers, "Range": "bytes=0-9", "If-Range": '"not-the-tag"'}
    )
    assert changed.status_code == 200 and changed.content == first
    same = client.get(url, headers={**studio.headers, "Range": "bytes=0-9", "If-Range": etag})
    assert same.status_code == 206 and same.content == first[:10]
    resumed = client.get(url, headers={**studio.headers, "Range": "bytes=10-19", "If-Match": etag})
    assert resumed.status_code == 206 and resumed.content == first[10:20]
    other_bytes = client.get(
        url, headers={**studio.headers, "Range": "bytes=10-19", "If-Match": '"not-the-tag"'}
    )
    assert other_bytes.status_code == 412 and other_bytes.headers["ETag"] == etag
    assert other_bytes.json()["code"] == "precondition_failed"
    head = client.head(url, headers=studio.headers)
    assert head.status_code == 200 and head.headers["Content-Length"] == "300000"


def test_a_version_row_never_changes(client: TestClient, studio: Studio, db_engine: Engine) -> None:
    asset = make_asset(client, studio)
    upload(client, studio, asset["asset_id"], b"bytes of version one")
    with pytest.raises(DBAPIError, match="immutable"), db_engine.begin() as conn:
        conn.execute(
            text("UPDATE content_asset_versions SET size_bytes = 1 WHERE asset_id = :a"),
            {"a": asset["asset_id"]},
        )
