"""The front door's content locations: tus PATCHes stream unbuffered up to the largest
version, and content writes are charged to the credential they carry."""

from __future__ import annotations

from pathlib import Path

from core.platform.config import Settings
from tests.unit.stack.test_front_door_conf import body_cap, directives, locations, render

UPLOADS = "~ ^/v1/content/uploads(/|$)"
CONTENT = "~ ^/v1/content(/|$)"


def test_uploads_stream_unbuffered_up_to_the_largest_version(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, content_max_upload_bytes=3 << 30)
    conf = render(settings)
    assert body_cap(conf, UPLOADS) == 3 << 30
    block = locations(conf)[UPLOADS]
    assert directives(block, "proxy_request_buffering") == ["off"]
    assert directives(block, "client_body_buffer_size") == ["1m"]  # relayed in large pieces
    assert directives(block, "proxy_read_timeout") == ["900000ms"]
    zones = [z.split()[0] for z in directives(block, "limit_req")]
    assert zones == ["zone=stride_public", "zone=stride_game_key"]
    # Regex locations match in order: the uploads' must come before the rest of /v1/content.
    assert conf.index(UPLOADS) < conf.index(CONTENT)


def test_other_content_writes_are_charged_to_both_credentials(tmp_path: Path) -> None:
    conf = render(Settings(state_dir=tmp_path))
    zones = [z.split()[0] for z in directives(locations(conf)[CONTENT], "limit_req")]
    assert zones == ["zone=stride_public", "zone=stride_game_key", "zone=stride_app_user"]
    assert body_cap(conf, CONTENT) == Settings(state_dir=tmp_path).api_max_body_bytes
