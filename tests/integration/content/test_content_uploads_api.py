"""``/v1/content/uploads`` (tus 1.0): discovery, creation, resumed PATCHes with checksums,
the whole-file SHA-256, termination and expiry, size limits, on the real PostgreSQL and the
local object storage."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.content.storage import storage_for
from core.content.uploads import expire_uploads
from core.platform.config import get_settings
from core.platform.db import get_engine
from tests.integration.content.assets_helpers import (  # noqa: F401  (fixtures)
    TUS,
    Studio,
    client_fixture,
    create_upload,
    make_asset,
    metadata,
    patch,
    studio_fixture,
)

pytestmark = pytest.mark.integration


def _stored_parts(location: str) -> list[Path]:
    """The upload's part files in the local store."""
    upload_id = location.rsplit("/", 1)[1]
    folder = Path(get_settings().content_root) / "_uploads" / upload_id
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _digest(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def test_options_tells_what_the_server_speaks(client: TestClient) -> None:
    response = client.options("/v1/content/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "checksum",
        "expiration",
        "termination",
    }
    assert response.headers["Tus-Checksum-Algorithm"] == "sha1,sha256"
    assert int(response.headers["Tus-Max-Size"]) == get_settings().content_max_upload_bytes


def test_an_upload_resumes_from_the_servers_offset_and_makes_a_version(
    client: TestClient, studio: Studio
) -> None:
    asset = make_asset(client, studio)
    data = os.urandom(250_000)
    location = create_upload(client, studio, asset["asset_id"], data, content_type="image/png")
    head = client.head(location, headers={**studio.headers, **TUS})
    assert head.headers["Upload-Offset"] == "0" and head.headers["Upload-Length"] == "250000"
    assert "Upload-Expires" in head.headers and head.headers["Cache-Control"] == "no-store"

    first = patch(
        client,
        studio,
        location,
        0,
        data[:100_000],
        **{"Upload-Checksum": _digest("sha1", data[:100_000])},
    )
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "100000"
    # A client that lost track sends from a wrong offset: refused, nothing kept.
    wrong = patch(client, studio, location, 50_000, data[50_000:])
    assert wrong.status_code == 409 and "100000" in wrong.json()["detail"]
    assert wrong.headers["Tus-Resumable"] == "1.0.0"  # refusals too
    resumed_from = int(
        client.head(location, headers={**studio.headers, **TUS}).headers["Upload-Offset"]
    )
    assert resumed_from == 100_000
    second = patch(client, studio, location, resumed_from, data[resumed_from:200_000])
    assert second.status_code == 204
    last = patch(
        client,
        studio,
        location,
        200_000,
        data[200_000:],
        **{"Upload-Checksum": _digest("sha256", data[200_000:])},
    )
    assert last.status_code == 204, last.text
    assert last.headers["Upload-Offset"] == "250000" and last.headers["Stride-Version"] == "1"

    state = client.get(location, headers=studio.headers).json()
    assert state["status"] == "completed" and state["version"] == 1
    downloaded = client.get(
        f"/v1/content/assets/{asset['asset_id']}/versions/1/download", headers=studio.headers
    )
    assert downloaded.content == data
    assert _stored_parts(location) == []  # parts are deleted once composed
    done = client.head(location, headers={**studio.headers, **TUS})
    assert done.status_code == 200 and done.headers["Upload-Offset"] == "250000"
    again = patch(client, studio, location, 250_000, b"")
    assert again.status_code == 409  # complete: no more bytes


def test_bytes_that_do_not_match_their_checksums_are_refused(
    client: TestClient, studio: Studio
) -> None:
    asset = make_asset(client, studio)
    data = os.urandom(10_000)
    location = create_upload(client, studio, asset["asset_id"], data)
    bad_chunk = patch(
        client,
        studio,
        location,
        0,
        data[:5000],
        **{"Upload-Checksum": _digest("sha1", b"something else")},
    )
    assert bad_chunk.status_code == 460 and bad_chunk.json()["code"] == "checksum_mismatch"
    assert client.head(location, headers={**studio.headers, **TUS}).headers["Upload-Offset"] == "0"
    unknown = patch(client, studio, location, 0, data, **{"Upload-Checksum": "md5 AAAA"})
    assert unknown.status_code == 400 and "sha1, sha256" in unknown.json()["detail"]

    # All bytes arrive, but they are not the file whose SHA-256 was declared.
    lying = client.post(
        "/v1/content/uploads",
        headers={
            **studio.headers,
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(asset["asset_id"], b"another file"),
        },
    ).headers["Location"]
    refused = patch(client, studio, lying, 0, data)
    assert refused.status_code == 460 and "SHA-256" in refused.json()["detail"]
    assert client.get(lying, headers=studio.headers).json()["status"] == "failed"
    assert client.head(lying, headers={**studio.headers, **TUS}).status_code == 410
    versions = client.get(
        f"/v1/content/assets/{asset['asset_id']}/versions", headers=studio.headers
    ).json()["items"]
    assert versions == []
    assert _stored_parts(lying) == []


def test_a_terminated_upload_is_gone_with_its_bytes(client: TestClient, studio: Studio) -> None:
    asset = make_asset(client, studio)
    data = os.urandom(4096)
    location = create_upload(client, studio, asset["asset_id"], data)
    assert patch(client, studio, location, 0, data[:1000]).status_code == 204
    assert len(_stored_parts(location)) == 1
    assert client.delete(location, headers={**studio.headers, **TUS}).status_code == 204
    assert _stored_parts(location) == []
    assert client.head(location, headers={**studio.headers, **TUS}).status_code == 410
    late = patch(client, studio, location, 1000, data[1000:])
    assert late.status_code == 410 and late.json()["code"] == "gone"
    assert client.delete(location, headers={**studio.headers, **TUS}).status_code == 204


def test_an_abandoned_upload_expires_and_the_sweep_deletes_its_bytes(
    client: TestClient, studio: Studio
) -> None:
    asset = make_asset(client, studio)
    data = os.urandom(4096)
    location = create_upload(client, studio, asset["asset_id"], data)
    assert patch(client, studio, location, 0, data[:1000]).status_code == 204
    expires = datetime.strptime(
        client.head(location, headers={**studio.headers, **TUS}).headers["Upload-Expires"],
        "%a, %d %b %Y %H:%M:%S GMT",
    ).replace(tzinfo=UTC)
    expiry = timedelta(seconds=get_settings().content_upload_expiry_s)
    assert abs(expires - (datetime.now(UTC) + expiry)) < timedelta(minutes=1)

    swept = expire_uploads(
        get_engine(), storage_for(get_settings()), expires + timedelta(seconds=1)
    )
    assert swept >= 1
    assert _stored_parts(location) == []
    state = client.get(location, headers=studio.headers).json()
    assert state["status"] == "expired"
    assert patch(client, studio, location, 1000, data[1000:]).status_code == 410
    assert expire_uploads(get_engine(), storage_for(get_settings()), expires) == 0


def test_limits_and_protocol_errors_are_refused_before_the_body_is_read(
    client: TestClient, studio: Studio
) -> None:
    asset = make_asset(client, studio)
    limit = get_settings().content_max_upload_bytes
    too_big = client.post(
        "/v1/content/uploads",
        headers={
            **studio.headers,
            **TUS,
            "Upload-Length": str(limit + 1),
            "Upload-Metadata": metadata(asset["asset_id"], b""),
        },
    )
    assert too_big.status_code == 413 and str(limit) in too_big.json()["detail"]
    no_sha = client.post(
        "/v1/content/uploads",
        headers={
            **studio.headers,
            **TUS,
            "Upload-Length": "10",
            "Upload-Metadata": "asset_id YQ==",
        },
    )
    assert no_sha.status_code == 400 and "sha256" in no_sha.json()["detail"]
    old_tus = client.post(
        "/v1/content/uploads", headers={**studio.headers, "Tus-Resumable": "0.2.2"}
    )
    assert old_tus.status_code == 412 and old_tus.headers["Tus-Version"] == "1.0.0"
    anonymous = client.post("/v1/content/uploads", headers=TUS)
    assert anonymous.status_code == 401 and anonymous.headers["Tus-Resumable"] == "1.0.0"
    assert anonymous.json()["code"] == "unauthorized"

    data = b"0123456789"
    location = create_upload(client, studio, asset["asset_id"], data)
    over = patch(client, studio, location, 0, data + b"more")
    assert over.status_code == 413
    not_tus = client.patch(
        location,
        content=data,
        headers={**studio.headers, **TUS, "Upload-Offset": "0", "Content-Type": "text/plain"},
    )
    assert not_tus.status_code == 415
    assert client.head(location, headers={**studio.headers, **TUS}).headers["Upload-Offset"] == "0"
    empty = make_asset(client, studio)
    made = create_upload(client, studio, empty["asset_id"], b"")
    assert client.get(made, headers=studio.headers).json()["version"] == 1  # complete at once


def test_concurrent_patches_at_one_offset_store_the_bytes_once(
    client: TestClient, studio: Studio
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    asset = make_asset(client, studio)
    data = os.urandom(64_000)
    location = create_upload(client, studio, asset["asset_id"], data)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda _i: patch(client, studio, location, 0, data).status_code, range(6))
        )
    assert answers.count(204) == 1, answers
    assert set(answers) <= {204, 409}  # the others lost the race (or came after: complete)
    state = client.get(location, headers=studio.headers).json()
    assert state["status"] == "completed" and state["version"] == 1
    versions = client.get(
        f"/v1/content/assets/{asset['asset_id']}/versions", headers=studio.headers
    ).json()["items"]
    assert [v["version"] for v in versions] == [1]
    assert _stored_parts(location) == []  # the losers' parts were deleted too


def test_the_whole_files_sha256_is_checked_when_another_process_took_a_part(
    client: TestClient, studio: Studio
) -> None:
    """The running SHA-256 lives in the API process that received the bytes: a PATCH that
    lands in another one (here: the states forgotten between PATCHes) finds none, and the
    composed file is hashed instead, so the check holds either way."""
    from core.content.uploads import HashStates

    asset = make_asset(client, studio)
    data = os.urandom(300_000)
    for declared, expected in ((data, 204), (b"not these bytes", 460)):
        location = client.post(
            "/v1/content/uploads",
            headers={
                **studio.headers,
                **TUS,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": metadata(asset["asset_id"], declared),
            },
        ).headers["Location"]
        assert patch(client, studio, location, 0, data[:120_000]).status_code == 204
        client.app.state.content_upload_hash_states = HashStates()  # type: ignore[attr-defined]
        assert patch(client, studio, location, 120_000, data[120_000:200_000]).status_code == 204
        last = patch(client, studio, location, 200_000, data[200_000:])
        assert last.status_code == expected, last.text
        assert _stored_parts(location) == []
    versions = client.get(
        f"/v1/content/assets/{asset['asset_id']}/versions", headers=studio.headers
    ).json()["items"]
    assert [v["sha256"] for v in versions] == [hashlib.sha256(data).hexdigest()]
    downloaded = client.get(
        f"/v1/content/assets/{asset['asset_id']}/versions/1/download", headers=studio.headers
    )
    assert downloaded.content == data


def test_a_running_sha256_refuses_other_bytes_across_patches(
    client: TestClient, studio: Studio
) -> None:
    """In one process the whole file's SHA-256 is carried from PATCH to PATCH (and a PATCH
    refused on its own checksum does not advance it): other bytes make no version."""
    asset = make_asset(client, studio)
    data = os.urandom(200_000)
    location = create_upload(client, studio, asset["asset_id"], data)
    assert patch(client, studio, location, 0, data[:50_000]).status_code == 204
    damaged = patch(
        client,
        studio,
        location,
        50_000,
        b"x" * 50_000,
        **{"Upload-Checksum": _digest("sha256", data[50_000:100_000])},
    )
    assert damaged.status_code == 460
    assert patch(client, studio, location, 50_000, data[50_000:100_000]).status_code == 204
    tampered = data[100_000:150_000] + b"y" * 50_000
    assert patch(client, studio, location, 100_000, tampered).status_code == 460
    assert client.get(location, headers=studio.headers).json()["status"] == "failed"
