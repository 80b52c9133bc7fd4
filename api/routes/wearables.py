"""``POST /v1/wearables/{source}``: app users upload wearable data, produced as samples.

Every upload is parsed and validated completely before anything is produced, so a bad
file is answered with a 4xx naming the line or field and nothing of it reaches Kafka.
Valid samples go to ``wearable.samples.v1`` keyed by the user (acks=all), in chunks. If
Kafka fails midway the answer is 503: the client retries the same upload, and the
deterministic sample ids make the retry count once downstream (silver dedupes).

Apple Health exports and audio files are streamed to a temporary file (raw body or
multipart field ``file``) and never held in memory; the export is parsed twice as a stream
(validate, then produce) so memory stays flat whatever the file size.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from starlette.datastructures import UploadFile

from api.auth import APP_USER_ERRORS, QUOTA_ERRORS, AppUserDep
from api.body import check_size, limited, limited_body_route
from api.deps import SettingsDep
from api.errors import NOT_JSON, error_responses
from api.kafka import KAFKA_ERRORS, EventProducer, ProducerDep
from core.platform.clock import DEFAULT_WINDOW
from core.platform.config import MULTIPART_ENVELOPE_BYTES
from core.platform.topics import WEARABLE_SAMPLES
from core.wearables.contracts import (
    Metric,
    ParseError,
    ParseResult,
    UserId,
    WearableSample,
    WearableSource,
)
from core.wearables.parsers.apple_health import iter_apple_health, iter_apple_health_rows
from core.wearables.parsers.audio import audio_metadata
from core.wearables.parsers.common import zone
from core.wearables.parsers.fitbit import fixed_offset, parse_fitbit
from core.wearables.parsers.oura import parse_oura
from core.wearables.raw_zone import store_raw_file

T = TypeVar("T")

# Fitbit and Oura JSON bodies are capped while FastAPI reads them; the spooled uploads
# (Apple Health, audio) cap their own stream at the larger upload limit.
router = APIRouter(
    prefix="/v1/wearables",
    tags=["wearables"],
    route_class=limited_body_route(
        lambda settings: settings.wearable_max_json_bytes, "upload fewer days at once"
    ),
)
UPLOAD_ADVICE = "upload a shorter export or recording"
RETRY = "Retry the same upload unchanged: sample ids make retries safe."


class UploadResult(BaseModel):
    accepted: int = Field(description="Samples written to Kafka (acks=all)")
    skipped: dict[str, int] = Field(
        description="Valid records not ingested, by reason (unsupported type, DST gap, ...)"
    )


class AudioResult(UploadResult):
    sample_id: str
    uri: str = Field(description="Where the recording is kept in the lake's raw zone")
    format: str
    duration_s: float
    size_bytes: int
    sha256: str


class _Upload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = Field(
        default=None, description="Optional; when given it must be the token's user"
    )
    device: Annotated[str, Field(max_length=256)] = ""


class FitbitUpload(_Upload):
    """Fitbit Web API intraday responses (heart rate, steps) of one user."""

    timezone: str | None = Field(
        default=None, description="IANA zone of the Fitbit profile (DST-aware)"
    )
    utc_offset_ms: int | None = Field(
        default=None,
        ge=-14 * 3_600_000,
        le=14 * 3_600_000,
        description="offsetFromUTCMillis of the profile, when no zone is given",
    )
    documents: list[dict[str, Any]] = Field(
        min_length=1, max_length=366, description="Response bodies, as Fitbit returns them"
    )

    @model_validator(mode="after")
    def _one_zone(self) -> FitbitUpload:
        if (self.timezone is None) == (self.utc_offset_ms is None):
            raise ValueError("give exactly one of timezone or utc_offset_ms")
        if self.timezone is not None:
            zone(self.timezone)
        return self


class OuraUpload(_Upload):
    """Oura API v2 collection responses (``{"data": [...], "next_token": ...}``)."""

    timezone: str | None = Field(
        default=None,
        description="The user's IANA zone (e.g. Europe/Paris): heart rate readings are UTC and "
        "are placed on the user's days in it; default: the offsets of the upload's sleep",
        examples=["Europe/Paris"],
    )
    daily_sleep: dict[str, Any] | None = None
    sleep: dict[str, Any] | None = None
    heartrate: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _something(self) -> OuraUpload:
        if self.daily_sleep is None and self.sleep is None and self.heartrate is None:
            raise ValueError("give at least one of daily_sleep, sleep, heartrate")
        if self.timezone is not None:
            zone(self.timezone)
        return self


_ERRORS = {
    **NOT_JSON,
    **APP_USER_ERRORS,
    **QUOTA_ERRORS,
    **error_responses(
        {
            403: "Token not valid, or another user's data",
            413: "Upload over the size limit",
            422: "Malformed data; the message says where (line, field)",
        }
    ),
    **KAFKA_ERRORS,
}


def _own(body: _Upload, user_id: str) -> None:
    if body.user_id is not None and body.user_id != user_id:
        raise HTTPException(
            403,
            f"user_id {body.user_id!r} is not the token's user: a user only uploads their own data",
        )


async def _parsed(parse: Callable[[], T]) -> T:
    """Run a parser in a worker thread (never on the event loop); what it refuses is a 422."""
    try:
        return await asyncio.to_thread(parse)
    except ParseError as exc:
        raise HTTPException(422, f"{exc}. Nothing from this upload was ingested.") from None


def _records(samples: list[WearableSample]) -> list[tuple[bytes, bytes]]:
    return [(s.user_id.encode(), s.model_dump_json().encode()) for s in samples]


async def _produce(producer: EventProducer, samples: list[WearableSample]) -> None:
    records = await asyncio.to_thread(_records, samples)  # a chunk's JSON: not on the loop
    await producer.produce(WEARABLE_SAMPLES, records, retry=RETRY)


async def _produce_all(producer: EventProducer, result: ParseResult, chunk: int) -> UploadResult:
    for i in range(0, len(result.samples), chunk):
        await _produce(producer, result.samples[i : i + chunk])
    return UploadResult(accepted=len(result.samples), skipped=dict(result.skipped))


@router.post(
    "/fitbit",
    status_code=202,
    response_model=UploadResult,
    summary="Upload Fitbit intraday heart rate and steps",
    responses=_ERRORS,
)
async def post_fitbit(
    body: FitbitUpload,
    user_id: AppUserDep,
    producer: ProducerDep,
    settings: SettingsDep,
) -> UploadResult:
    _own(body, user_id)
    tz = zone(body.timezone) if body.timezone else fixed_offset(body.utc_offset_ms or 0)
    result = await _parsed(
        lambda: parse_fitbit(body.documents, user_id=user_id, tz=tz, device=body.device)
    )
    return await _produce_all(producer, result, settings.wearable_produce_chunk)


@router.post(
    "/oura",
    status_code=202,
    response_model=UploadResult,
    summary="Upload Oura v2 daily_sleep, sleep and heartrate documents",
    responses=_ERRORS,
)
async def post_oura(
    body: OuraUpload,
    user_id: AppUserDep,
    producer: ProducerDep,
    settings: SettingsDep,
) -> UploadResult:
    _own(body, user_id)
    collections = {
        "daily_sleep": body.daily_sleep,
        "sleep": body.sleep,
        "heartrate": body.heartrate,
    }
    tz = zone(body.timezone) if body.timezone else None
    result = await _parsed(
        lambda: parse_oura(collections, user_id=user_id, device=body.device, tz=tz)
    )
    return await _produce_all(producer, result, settings.wearable_produce_chunk)


@asynccontextmanager
async def _spooled_upload(request: Request, limit: int, suffix: str) -> AsyncIterator[Path]:
    """The upload (raw body, or multipart field ``file``) in a temporary file, size-capped."""
    multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
    body = limited(
        request, limit, UPLOAD_ADVICE, envelope=MULTIPART_ENVELOPE_BYTES if multipart else 0
    )
    with tempfile.TemporaryDirectory(prefix="stride-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        size = 0
        with path.open("wb") as out:
            async for chunk in _upload_chunks(body, multipart):
                size += len(chunk)
                check_size(size, limit, UPLOAD_ADVICE)
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise HTTPException(422, "empty upload: send the file as the body or as field 'file'")
        yield path


async def _upload_chunks(body: Request, multipart: bool) -> AsyncIterator[bytes]:
    """The uploaded file's bytes: the raw body, or the multipart field ``file``."""
    if not multipart:
        async for chunk in body.stream():
            yield chunk
        return
    form = await body.form(max_files=1, max_fields=8)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "multipart upload must have a file field named 'file'")
    while chunk := await upload.read(1 << 20):
        yield chunk


def _chunks(samples: Iterator[WearableSample], size: int) -> Iterator[list[WearableSample]]:
    batch: list[WearableSample] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _validate_export(path: Path, user_id: str) -> tuple[int, dict[str, int]]:
    # The first pass only counts: the parser's rows, no sample model per record.
    skipped: dict[str, int] = {}
    count = sum(map(len, iter_apple_health_rows(path, user_id=user_id, skipped=skipped)))
    return count, skipped


@router.post(
    "/apple_health",
    status_code=202,
    response_model=UploadResult,
    summary="Upload an Apple Health export.xml (raw body or multipart field 'file')",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/xml": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
async def post_apple_health(
    request: Request,
    user_id: AppUserDep,
    producer: ProducerDep,
    settings: SettingsDep,
    owner: Annotated[
        UserId | None, Query(alias="user_id", description="Optional; must be the token's user")
    ] = None,
) -> UploadResult:
    if owner is not None and owner != user_id:
        raise HTTPException(403, f"user_id {owner!r} is not the token's user")
    async with _spooled_upload(request, settings.wearable_max_upload_bytes, ".xml") as path:
        count, skipped = await _parsed(lambda: _validate_export(path, user_id))
        # Second pass: the file was fully valid, so this one cannot fail on content.
        batches = _chunks(iter_apple_health(path, user_id=user_id), settings.wearable_produce_chunk)
        while batch := await asyncio.to_thread(next, batches, None):
            await _produce(producer, batch)
    return UploadResult(accepted=count, skipped=skipped)


@router.post(
    "/audio",
    status_code=202,
    response_model=AudioResult,
    summary="Upload an audio recording (WAV or FLAC): kept in the lake, metadata produced",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def post_audio(
    request: Request,
    user_id: AppUserDep,
    producer: ProducerDep,
    settings: SettingsDep,
    recorded_at: Annotated[
        AwareDatetime | None, Query(description="Start of the recording (default: now)")
    ] = None,
    device: Annotated[str, Query(max_length=256)] = "",
) -> AudioResult:
    now = datetime.now(UTC)
    start = recorded_at or now
    problem = DEFAULT_WINDOW.problem(start, now, "recorded_at")
    if problem:
        raise HTTPException(422, problem)
    async with _spooled_upload(request, settings.wearable_max_upload_bytes, ".audio") as path:
        meta = await _parsed(lambda: audio_metadata(path))
        relative = f"audio/user_id={user_id}/{meta.sha256}.{meta.format}"
        uri = await asyncio.to_thread(store_raw_file, settings.lake_root, relative, path)
    sample = WearableSample.of(
        user_id=user_id,
        source=WearableSource.audio,
        metric=Metric.audio_recording,
        value=meta.duration_s,
        unit="s",
        start=start,
        end=start + timedelta(seconds=meta.duration_s),
        device=device,
        attributes={
            "format": meta.format,
            "sha256": meta.sha256,
            "size_bytes": str(meta.size_bytes),
            "sample_rate": str(meta.sample_rate),
            "channels": str(meta.channels),
            "uri": uri,
        },
    )
    await _produce(producer, [sample])
    return AudioResult.model_validate(
        {
            **asdict(meta),
            "accepted": 1,
            "skipped": {},
            "sample_id": str(sample.sample_id),
            "uri": uri,
        }
    )
