"""Content through the running API behind its nginx front door: a PATCH cut off midway keeps
its bytes and the upload resumes; the typed client uploads and downloads with resume; the
events SDK posts batches; ``stride content`` drives it all from the command line."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from stride_client import AssetsClient, EventsClient, StrideAPIError, Transport
from tests.integration.content.assets_helpers import (  # noqa: F401  (fixtures)
    TUS,
    Studio,
    metadata,
    player_token_fixture,
    studio_fixture,
)

pytestmark = pytest.mark.integration


class Crash(Exception):
    """The client process dying mid-transfer."""


def _create(api: str, studio: Studio, data: bytes, name: str) -> tuple[str, str]:
    with httpx.Client(base_url=api, headers=studio.headers, timeout=30) as http:
        asset = http.post("/v1/content/assets", json={"kind": "bundle", "name": name}).json()
        created = http.post(
            "/v1/content/uploads",
            headers={
                **TUS,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": metadata(asset["asset_id"], data),
            },
        )
    assert created.status_code == 201, created.text
    return asset["asset_id"], created.headers["Location"]


def test_a_patch_cut_off_midway_keeps_its_bytes_and_the_upload_resumes(
    live_api: str, studio: Studio, tmp_path: Path
) -> None:
    data = os.urandom(2_000_000)
    asset_id, location = _create(live_api, studio, data, "cut-off.bin")
    address = urlsplit(live_api)
    sent = 700_000
    with socket.create_connection((address.hostname, address.port)) as raw:
        raw.sendall(
            (
                f"PATCH {location} HTTP/1.1\r\nHost: {address.netloc}\r\n"
                f"X-Api-Key: {studio.key}\r\nTus-Resumable: 1.0.0\r\n"
                "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data[:sent]
        )
    # nginx passes the bytes on as they arrive (request buffering off); when the client is
    # gone the API keeps what it received. Wait (bounded) until the part is recorded.
    transport = Transport(live_api, game_key=studio.key)
    content = AssetsClient(transport)
    deadline = time.monotonic() + 20
    while (offset := content.upload_offset(location)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # readiness polling of the API's state, bounded
    assert 0 < offset <= sent
    source = tmp_path / "cut-off.bin"
    source.write_bytes(data)
    done = content.upload(asset_id, source, resume_url=location, chunk_bytes=512 * 1024)
    assert done.status == "completed" and done.version == 1
    with httpx.Client(base_url=live_api, headers=studio.headers, timeout=30) as http:
        url = f"/v1/content/assets/{asset_id}/versions/1/download"
        whole = http.get(url)
        assert whole.status_code == 200 and whole.content == data
        part = http.get(url, headers={"Range": "bytes=1999990-"})
        assert part.status_code == 206 and part.content == data[-10:]
        assert http.get(url, headers={"If-None-Match": whole.headers["ETag"]}).status_code == 304
    transport.close()


def test_the_client_resumes_uploads_and_downloads_against_the_running_api(
    live_api: str, studio: Studio, player_token: str, tmp_path: Path
) -> None:
    data = os.urandom(2_500_000)
    source = tmp_path / "atlas.png"
    source.write_bytes(data)
    with Transport(live_api, game_key=studio.key) as transport:
        content = AssetsClient(transport)
        assert content.upload_capabilities()["Tus-Version"] == "1.0.0"
        asset = content.create_asset("texture", "ui/atlas.png", tags=["ui"])
        urls: list[str] = []

        def crash_after_first_chunk(done: int, _total: int) -> None:
            if done > 0:
                raise Crash

        with pytest.raises(Crash):
            content.upload(
                asset.asset_id,
                source,
                on_created=urls.append,
                chunk_bytes=1 << 20,
                progress=crash_after_first_chunk,
            )
        assert content.upload_offset(urls[0]) == 1 << 20
        seen: list[int] = []
        done = content.upload(
            asset.asset_id, source, resume_url=urls[0], progress=lambda d, _t: seen.append(d)
        )
        assert done.status == "completed" and done.version == 1
        assert seen[0] == 1 << 20 and seen[-1] == len(data)  # resumed, not restarted
        version = content.get_version(asset.asset_id, 1)
        assert version.sha256 == hashlib.sha256(data).hexdigest()
        assert version.content_type == "image/png" and version.filename == "atlas.png"

        live = content.move_channel(asset.asset_id, "live", 1, reason="launch")
        with pytest.raises(StrideAPIError) as stale:
            content.move_channel(asset.asset_id, "live", 1, etag='"r0"')
        assert stale.value.status_code == 412
        assert content.channel_history(asset.asset_id, "live").items[0].reason == "launch"
        renamed = content.update_asset(asset.asset_id, asset.etag, name="ui/atlas-v2.png")
        assert renamed.name == "ui/atlas-v2.png"
        assert [a.name for a in content.iter_assets(tag="ui")] == ["ui/atlas-v2.png"]

    # A player downloads what `live` serves; cut off, the download resumes with Range.
    dest = tmp_path / "downloaded.png"
    with Transport(live_api, user_token=player_token) as transport:
        player = AssetsClient(transport)

        def crash_midway(done: int, _total: int) -> None:
            if done >= 1 << 20:
                raise Crash

        with pytest.raises(Crash):
            player.download(asset.asset_id, dest, channel="live", progress=crash_midway)
        assert not dest.exists() and dest.with_name("downloaded.png.part").stat().st_size > 0
        got = player.download(asset.asset_id, dest, channel="live")
        assert got.resumed_from >= 1 << 20 and got.version == live.version
        assert dest.read_bytes() == data
        unchanged = player.download(
            asset.asset_id, tmp_path / "again.png", version=1, if_none_match=f'"{got.sha256}"'
        )
        assert unchanged.not_modified


def test_the_events_sdk_posts_batches_to_the_running_api(live_api: str, studio: Studio) -> None:
    rejected = []
    with EventsClient(
        Transport(live_api, game_key=studio.key),
        batch_size=2,
        flush_interval_s=None,
        on_rejected=rejected.extend,
    ) as events:
        for i in range(3):
            events.send(f"player-{i}", "score", {"score": 10 * i})
        events.send("player-9", "score", {"score": "not a number"})
    assert events.accepted == 3
    [bad] = rejected
    assert bad.event["player_id"] == "player-9" and "score" in bad.reason


def test_stride_content_commands_against_the_running_api(
    live_api: str, studio: Studio, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["content", "--api-url", live_api, "--key", studio.key]

    def run(*args: str) -> str:
        result = runner.invoke(cli_app, [*base, *args])
        assert result.exit_code == 0, result.output
        return result.output

    import json

    asset = json.loads(
        run("assets", "create", "config", "balance.json", "--tag", "tuning", "--json")
    )
    source = tmp_path / "balance.json"
    source.write_bytes(b'{"damage": 12}')
    assert "version 1" in run("assets", "upload", asset["asset_id"], str(source))
    assert not (tmp_path / "balance.json.stride-upload").exists()
    assert "live/all -> version 1" in run("channels", "move", asset["asset_id"], "live", "1")
    dest = tmp_path / "out.json"
    run("assets", "download", asset["asset_id"], str(dest), "--channel", "live")
    assert dest.read_bytes() == b'{"damage": 12}'
    assert "balance.json" in run("assets", "list", "--tag", "tuning")
    missing = runner.invoke(cli_app, [*base, "channels", "show", asset["asset_id"], "beta"])
    assert missing.exit_code == 1 and "404 not_found" in missing.output
