"""The content store on S3 (moto's server on loopback): the same API and code as the local
folder, only ``STRIDE_CONTENT_STORAGE_URI`` and the lake's S3 settings differ. Parts of an
upload are objects of their own, composed into the version's object by a multipart upload."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.main import create_app
from cli.stack import free_port
from core.content.storage import S3Storage, storage_for
from core.platform.config import Settings, get_settings
from tests.integration.content.assets_helpers import (  # noqa: F401  (fixtures)
    TUS,
    Studio,
    create_upload,
    make_asset,
    patch,
    studio_fixture,
)

pytestmark = pytest.mark.integration

BUCKET = f"stride-content-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def s3_settings(db_engine: Engine) -> Iterator[Settings]:
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if moto.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto S3 server did not start") from None
            time.sleep(0.05)  # readiness polling, bounded by the deadline
    env = {
        "STRIDE_CONTENT_STORAGE_URI": f"s3://{BUCKET}/content",
        "STRIDE_LAKE_S3_ENDPOINT": endpoint,
        "STRIDE_LAKE_S3_ACCESS_KEY_ID": "stride-test",
        "STRIDE_LAKE_S3_SECRET_ACCESS_KEY": "stride-test-secret",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        store = storage_for(settings)
        assert isinstance(store, S3Storage)
        store.client.create_bucket(Bucket=BUCKET)
        yield settings
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        moto.terminate()
        moto.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_client(s3_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def _objects(settings: Settings, prefix: str) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=settings.lake_s3_endpoint,
        region_name=settings.lake_s3_region,
        aws_access_key_id="stride-test",
        aws_secret_access_key="stride-test-secret",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_uploads_and_ranged_downloads_on_s3(
    s3_client: TestClient, s3_settings: Settings, studio: Studio
) -> None:
    asset = make_asset(s3_client, studio, kind="bundle")
    data = os.urandom(9 * 1024 * 1024 + 123)  # over boto3's multipart threshold (8 MiB)
    location = create_upload(s3_client, studio, asset["asset_id"], data)
    upload_id = location.rsplit("/", 1)[1]
    cut = 3 * 1024 * 1024
    assert patch(s3_client, studio, location, 0, data[:cut]).status_code == 204
    assert len(_objects(s3_settings, f"content/_uploads/{upload_id}/")) == 1
    done = patch(s3_client, studio, location, cut, data[cut:])
    assert done.status_code == 204, done.text
    sha = hashlib.sha256(data).hexdigest()
    assert _objects(s3_settings, f"content/game_id={studio.game_id}/") == [
        f"content/game_id={studio.game_id}/{sha}"
    ]
    assert _objects(s3_settings, f"content/_uploads/{upload_id}/") == []

    url = f"/v1/content/assets/{asset['asset_id']}/versions/1/download"
    whole = s3_client.get(url, headers=studio.headers)
    assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == sha
    middle = s3_client.get(url, headers={**studio.headers, "Range": "bytes=5000000-5000099"})
    assert middle.status_code == 206 and middle.content == data[5_000_000:5_000_100]

    abandoned = create_upload(s3_client, studio, asset["asset_id"], b"x" * 10)
    assert patch(s3_client, studio, abandoned, 0, b"x" * 4).status_code == 204
    assert s3_client.delete(abandoned, headers={**studio.headers, **TUS}).status_code == 204
    assert _objects(s3_settings, f"content/_uploads/{abandoned.rsplit('/', 1)[1]}/") == []
