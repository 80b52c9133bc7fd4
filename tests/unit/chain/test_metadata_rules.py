"""NFT metadata and contract facts, the pure parts: URIs, data: URIs, parsing, backoff,
the SSRF address check, ERC-165 probing."""

import base64
import json

import pytest
from eth_abi import encode

from core.chain.facts import probe
from core.chain.metadata import (
    MetadataError,
    address_refused,
    decode_data_uri,
    expand_1155,
    gateway_url,
    parse_metadata,
    retry_delay_s,
    uri_call,
)

GATEWAY = "http://gw.example/ipfs/"


def test_ipfs_uris_go_through_the_gateway_and_others_stay() -> None:
    assert gateway_url("ipfs://bafyCID/1.json", GATEWAY) == "http://gw.example/ipfs/bafyCID/1.json"
    assert gateway_url("ipfs://ipfs/bafyCID/1", GATEWAY) == "http://gw.example/ipfs/bafyCID/1"
    assert gateway_url("https://x.example/1", GATEWAY) == "https://x.example/1"


def test_erc1155_id_placeholder_is_64_hex_digits() -> None:
    assert expand_1155("https://x/{id}.json", 255) == "https://x/" + "0" * 62 + "ff.json"


def test_data_uris_base64_and_percent_encoded() -> None:
    document = {"name": "Sword"}
    b64 = "data:application/json;base64," + base64.b64encode(json.dumps(document).encode()).decode()
    assert decode_data_uri(b64) == (json.dumps(document).encode(), "application/json")
    assert decode_data_uri('data:application/json,{"a"%3A1}') == (b'{"a":1}', "application/json")
    with pytest.raises(MetadataError, match="comma"):
        decode_data_uri("data:application/json;base64")


def test_parse_keeps_the_standard_fields_and_rewrites_ipfs_media() -> None:
    raw = json.dumps(
        {
            "name": "Ape #1",
            "description": "an ape",
            "image": "ipfs://bafyimg/1.png",
            "animation_url": "ipfs://bafyanim/1.mp4",
            "attributes": [{"trait_type": "fur", "value": "gold", "junk": "x"}, "not a trait"],
        }
    ).encode()
    meta = parse_metadata(raw, "application/json", GATEWAY)
    assert (meta.name, meta.description, meta.image) == ("Ape #1", "an ape", "ipfs://bafyimg/1.png")
    assert meta.image_url == "http://gw.example/ipfs/bafyimg/1.png"
    assert meta.animation_url == "http://gw.example/ipfs/bafyanim/1.mp4"
    assert meta.attributes == [{"trait_type": "fur", "value": "gold"}]
    traits = parse_metadata(b'{"traits": {"rarity": "rare"}}', None, GATEWAY)
    assert traits.attributes == [{"trait_type": "rarity", "value": "rare"}]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "is a list"), (b"\xff\xfe", "not valid JSON")],
)
def test_invalid_documents_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(MetadataError, match=reason):
        parse_metadata(raw, None, GATEWAY)


def test_retries_back_off_exponentially_with_a_cap() -> None:
    assert [retry_delay_s(n) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert retry_delay_s(50) == 6 * 3600.0


def test_private_and_loopback_hosts_are_refused() -> None:
    assert "non-public" in (address_refused("127.0.0.1") or "")
    assert "non-public" in (address_refused("10.1.2.3") or "")
    assert "non-public" in (address_refused("169.254.169.254") or "")  # cloud metadata
    assert address_refused("8.8.8.8") is None


def test_uri_calls_use_tokenuri_or_uri() -> None:
    assert uri_call("erc721", 1) == "0xc87b56dd" + encode(["uint256"], [1]).hex()
    assert uri_call("erc1155", 1).startswith("0x0e89341c")


def _word(value: int) -> str:
    return "0x" + encode(["uint256"], [value]).hex()


def test_probe_tells_the_standards_apart() -> None:
    def erc721(_to: str, data: str) -> str | None:
        if data.startswith("0x01ffc9a7"):
            return _word(1 if "80ac58cd" in data else 0)
        if data == "0x06fdde03":
            return "0x" + encode(["string"], ["Apes"]).hex()
        return None

    facts = probe(erc721, "0x" + "ab" * 20)
    assert (facts.standard, facts.name, facts.symbol, facts.decimals) == (
        "erc721",
        "Apes",
        None,
        None,
    )

    def erc20(_to: str, data: str) -> str | None:
        if data == "0x313ce567":
            return _word(6)
        if data == "0x95d89b41":  # an old token answering bytes32
            return "0x" + b"USDC".ljust(32, b"\0").hex()
        return None

    facts = probe(erc20, "0x" + "cd" * 20)
    assert (facts.standard, facts.symbol, facts.decimals) == ("erc20", "USDC", 6)
    assert probe(lambda _t, _d: None, "0x" + "ef" * 20).standard is None
