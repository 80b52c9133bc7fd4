"""tus 1.0 headers, pure: metadata, lengths, checksums, the creation request."""

from __future__ import annotations

import base64
import hashlib

import pytest

from core.content.errors import BadHeader
from core.content.tus import (
    capability_headers,
    creation_request,
    encode_metadata,
    parse_checksum,
    parse_length,
    parse_metadata,
    supported_version,
)

SHA = hashlib.sha256(b"x").hexdigest()


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_metadata_pairs_decode_and_round_trip() -> None:
    header = f"asset_id {b64('a-1')},filename {b64('héros.png')},is_confidential"
    assert parse_metadata(header) == {
        "asset_id": "a-1",
        "filename": "héros.png",
        "is_confidential": "",
    }
    assert parse_metadata(encode_metadata(parse_metadata(header))) == parse_metadata(header)
    assert parse_metadata(None) == {} and parse_metadata("") == {}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("asset_id not-base64!", "not base64"),
        (f"a {b64('1')},a {b64('2')}", "given twice"),
        (f"a {b64('1')} extra", "not 'key base64value'"),
        (f"ba/d {b64('1')}", "not 'key base64value'"),
        ("k " + "A" * 5000, "longer than"),
    ],
)
def test_bad_metadata_is_refused_with_what_is_wrong(header: str, message: str) -> None:
    with pytest.raises(BadHeader, match=message):
        parse_metadata(header)


def test_lengths_are_plain_non_negative_integers() -> None:
    assert parse_length("0", "Upload-Length") == 0
    assert parse_length(" 1024 ", "Upload-Offset") == 1024
    for bad in ("-1", "1e3", "0x10", "", "1" * 20):
        with pytest.raises(BadHeader, match="non-negative integer"):
            parse_length(bad, "Upload-Length")
    with pytest.raises(BadHeader, match="missing Upload-Length"):
        parse_length(None, "Upload-Length")


def test_checksums_name_a_supported_algorithm_and_a_digest_of_its_size() -> None:
    digest = hashlib.sha1(b"chunk").digest()
    checksum = parse_checksum(f"sha1 {base64.b64encode(digest).decode()}")
    assert checksum is not None and checksum.algorithm == "sha1"
    hasher = checksum.hasher()
    hasher.update(b"chunk")
    assert checksum.matches(hasher)
    assert parse_checksum(None) is None
    with pytest.raises(BadHeader, match="sha1, sha256"):
        parse_checksum("md5 " + base64.b64encode(b"0" * 16).decode())
    with pytest.raises(BadHeader, match="size of a sha256 digest"):
        parse_checksum(f"sha256 {base64.b64encode(digest).decode()}")
    with pytest.raises(BadHeader, match="not base64"):
        parse_checksum("sha1 ***")


def test_a_creation_declares_the_asset_and_the_whole_files_sha256() -> None:
    header = f"asset_id {b64('a')},sha256 {b64(SHA.upper())},content_type {b64('image/png')}"
    request = creation_request("10", header)
    assert (request.length, request.sha256, request.content_type) == (10, SHA, "image/png")
    assert creation_request("1", f"asset_id {b64('a')},sha256 {b64(SHA)}").content_type == (
        "application/octet-stream"
    )
    with pytest.raises(BadHeader, match="name the asset"):
        creation_request("1", f"sha256 {b64(SHA)}")
    with pytest.raises(BadHeader, match="SHA-256"):
        creation_request("1", f"asset_id {b64('a')},sha256 {b64('abc')}")
    with pytest.raises(BadHeader, match="media type"):
        creation_request("1", f"asset_id {b64('a')},sha256 {b64(SHA)},content_type {b64('png')}")
    with pytest.raises(BadHeader, match="plain name"):
        creation_request("1", f"asset_id {b64('a')},sha256 {b64(SHA)},filename {b64('../x')}")


def test_the_protocol_version_and_capabilities() -> None:
    assert supported_version("1.0.0") and not supported_version("0.2.2")
    assert not supported_version(None)
    headers = capability_headers(1 << 30)
    assert headers["Tus-Max-Size"] == str(1 << 30)
    assert headers["Tus-Extension"] == "creation,checksum,expiration,termination"
