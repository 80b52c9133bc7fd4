"""NFT metadata: resolve ``tokenURI`` (ERC-721) / ``uri`` (ERC-1155), fetch, parse, cache.

``data:`` URIs (the items contract's on-chain JSON) are decoded in place; ``ipfs://CID/path``
is fetched through the configured gateway (``STRIDE_NFT_IPFS_GATEWAY``); ``http(s)`` as
is. Every fetch has a timeout and a size limit, follows at most ``MAX_REDIRECTS`` redirects
and, outside local development, refuses hosts that resolve to private, loopback,
link-local or reserved addresses (SSRF guard; ``STRIDE_NFT_METADATA_ALLOW_PRIVATE``).
A failure is stored with its reason and retried with exponential backoff; a token's
metadata is refreshed at most once per ``STRIDE_NFT_METADATA_REFRESH_COOLDOWN_S`` on request,
and again whenever its contract announces new metadata (ERC-4906 events).

The URI rules and the JSON parsing are pure; :func:`fetch` and the ``*_row`` functions are
the edges.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from eth_abi import encode as abi_encode
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.chain.facts import EthCall, decode_string
from core.platform.config import ChainSettings

TOKEN_URI = "0xc87b56dd"  # noqa: S105 - tokenURI(uint256) selector, ERC-721
URI = "0x0e89341c"  # uri(uint256), ERC-1155
MAX_REDIRECTS = 3
MAX_URI_CHARS = 8192
MAX_TEXT_CHARS = 4096
MAX_ATTRIBUTES = 200
RETRY_BASE_S = 30.0
RETRY_MAX_S = 6 * 3600.0


class MetadataError(ValueError):
    """Why a token's metadata could not be resolved (stored as its ``reason``)."""


@dataclass(frozen=True)
class Metadata:
    name: str | None
    description: str | None
    image: str | None
    image_url: str | None  # the image as an http(s) URL (ipfs:// through the gateway)
    animation_url: str | None
    attributes: list[dict[str, Any]]
    content_type: str | None


# ---- pure rules ---------------------------------------------------------------------------


def uri_call(standard: str, token_id: int) -> str:
    """``eth_call`` data asking a contract for a token's metadata URI."""
    selector = URI if standard == "erc1155" else TOKEN_URI
    return selector + abi_encode(["uint256"], [token_id]).hex()


def expand_1155(uri: str, token_id: int) -> str:
    """ERC-1155's ``{id}`` placeholder: the id as 64 lower-case hex digits."""
    return uri.replace("{id}", f"{token_id:064x}")


def gateway_url(uri: str, gateway: str) -> str:
    """``ipfs://CID/path`` (or ``ipfs://ipfs/CID/path``) through the gateway; other URIs as
    they are."""
    if not uri.startswith("ipfs://"):
        return uri
    path = uri.removeprefix("ipfs://").removeprefix("ipfs/").lstrip("/")
    return gateway.rstrip("/") + "/" + path


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """The bytes and media type of a ``data:`` URI (RFC 2397, base64 or percent-encoded)."""
    header, sep, payload = uri.removeprefix("data:").partition(",")
    if not sep:
        raise MetadataError("data: URI without a comma")
    parts = header.split(";")
    media = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        try:
            return base64.b64decode(payload, validate=False), media
        except ValueError as exc:
            raise MetadataError(f"data: URI is not valid base64 ({exc})") from exc
    return urllib.parse.unquote_to_bytes(payload), media


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        return None
    return str(value)[:MAX_TEXT_CHARS]


def parse_metadata(raw: bytes, content_type: str | None, gateway: str) -> Metadata:
    """The standard fields of a metadata document (OpenSea / ERC-721 / ERC-1155 JSON)."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MetadataError(f"metadata is not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise MetadataError(f"metadata JSON is a {type(document).__name__}, not an object")
    raw_attributes = document.get("attributes") or document.get("traits") or []
    if isinstance(raw_attributes, dict):  # {"rarity": "rare"} as some collections write it
        raw_attributes = [{"trait_type": k, "value": v} for k, v in raw_attributes.items()]
    attributes = (
        [
            {
                k: v
                for k, v in a.items()
                if k in ("trait_type", "value", "display_type", "max_value")
            }
            for a in raw_attributes[:MAX_ATTRIBUTES]
            if isinstance(a, dict)
        ]
        if isinstance(raw_attributes, list)
        else []
    )
    image = _text(document.get("image") or document.get("image_url"))
    animation = _text(document.get("animation_url"))
    return Metadata(
        name=_text(document.get("name")),
        description=_text(document.get("description")),
        image=image,
        image_url=gateway_url(image, gateway) if image else None,
        animation_url=gateway_url(animation, gateway) if animation else None,
        attributes=attributes,
        content_type=content_type,
    )


def retry_delay_s(attempts: int) -> float:
    """Backoff before the next attempt after ``attempts`` failures (30 s, 1 min, ... 6 h)."""
    return min(RETRY_MAX_S, RETRY_BASE_S * 2 ** max(0, attempts - 1))


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the SSRF guard lets a fetch connect to ``address``."""
    return address.is_global and not address.is_multicast


def vet_host(host: str) -> tuple[str | None, str | None]:
    """Resolve ``host`` once: ``(address to connect to, None)`` when every address it resolves
    to is public, else ``(None, why it is refused)``. The fetch then connects to that address
    (pinned), so a resolver that answers differently the second time (DNS rebinding) cannot
    steer the connection to a private address after the check."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return None, f"cannot resolve {host} ({exc})"
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        return None, f"cannot resolve {host} (no address)"
    for address in addresses:
        if not is_public(address):
            return None, f"{host} resolves to the non-public address {address}"
    return str(addresses[0]), None


def address_refused(host: str) -> str | None:
    """Why a host may not be fetched with the SSRF guard on (None: it may)."""
    return vet_host(host)[1]


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``url`` rewritten to connect to ``address``, with the ``Host`` header and the TLS
    server name (SNI and certificate check) still the URL's own host."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    rewritten = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return rewritten, {"Host": host_header}, {"sni_hostname": host}


# ---- fetching (the edge) ------------------------------------------------------------------


def fetch(url: str, settings: ChainSettings) -> tuple[bytes, str | None]:
    """GET ``url`` with the timeout, size limit, redirect limit and SSRF guard."""
    timeout = settings.nft_metadata_timeout_s
    limit = settings.nft_metadata_max_bytes
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parsed = urllib.parse.urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise MetadataError(f"cannot fetch {url[:200]!r}: not an http(s) URL")
            target: str = url
            headers: dict[str, str] = {}
            extensions: dict[str, str] = {}
            if not settings.nft_metadata_private_allowed:
                address, refused = vet_host(parsed.hostname)
                if refused or address is None:
                    raise MetadataError(f"refused: {refused}")
                target, headers, extensions = pinned(url, address)
            try:
                with client.stream(
                    "GET", target, headers=headers, extensions=extensions
                ) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urllib.parse.urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise MetadataError(f"GET {url[:200]} answered HTTP {response.status_code}")
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > limit:
                        raise MetadataError(f"metadata larger than {limit} bytes ({declared})")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise MetadataError(f"metadata larger than {limit} bytes")
                    return bytes(body), response.headers.get("content-type")
            except httpx.TimeoutException as exc:
                raise MetadataError(f"GET {url[:200]} timed out after {timeout}s") from exc
            except httpx.HTTPError as exc:
                raise MetadataError(f"GET {url[:200]} failed: {exc}") from exc
    raise MetadataError(f"more than {MAX_REDIRECTS} redirects")


def resolve(
    call: EthCall, standard: str, contract: str, token_id: int, settings: ChainSettings
) -> tuple[str, Metadata]:
    """The token's metadata URI and its parsed metadata; ``MetadataError`` says why not."""
    uri = decode_string(call(contract, uri_call(standard, token_id)), MAX_URI_CHARS)
    if not uri:
        raise MetadataError("the contract returned no metadata URI for this token")
    if standard == "erc1155":
        uri = expand_1155(uri, token_id)
    gateway = settings.nft_ipfs_gateway
    if uri.startswith("data:"):
        inline, inline_media = decode_data_uri(uri)
        if len(inline) > settings.nft_metadata_max_bytes:
            raise MetadataError(f"metadata larger than {settings.nft_metadata_max_bytes} bytes")
        return uri, parse_metadata(inline, inline_media, gateway)
    raw, media = fetch(gateway_url(uri, gateway), settings)
    return uri, parse_metadata(raw, media, gateway)


# ---- the cache (nft_metadata) -------------------------------------------------------------


def queue_missing(engine: Engine, limit: int = 200) -> int:
    """Queue (status ``pending``) every held NFT that has no metadata row yet."""
    with engine.begin() as conn:
        result = conn.execute(
            text(
                "INSERT INTO nft_metadata (chain_id, contract, token_id, status) "
                "SELECT DISTINCT b.chain_id, b.contract, b.token_id, 'pending' "
                "FROM nft_balances b WHERE NOT EXISTS (SELECT 1 FROM nft_metadata m "
                " WHERE m.chain_id = b.chain_id AND m.contract = b.contract "
                " AND m.token_id = b.token_id) LIMIT :n ON CONFLICT DO NOTHING"
            ),
            {"n": limit},
        )
    return int(result.rowcount or 0)


def requeue_updated(engine: Engine) -> int:
    """Queue again the tokens whose contract announced new metadata (ERC-4906
    ``MetadataUpdate`` / ``BatchMetadataUpdate``) in a block after their last fetch.

    A block's time is whole seconds: an update mined in the second of the fetch counts as
    after it (one fetch too many at worst, never one missed)."""
    with engine.begin() as conn:
        result = conn.execute(
            text(
                "UPDATE nft_metadata m SET status = 'pending', next_attempt_at = NULL "
                "FROM chain_logs l WHERE l.canonical AND l.chain_id = m.chain_id "
                "AND l.contract = m.contract AND m.status <> 'pending' "
                "AND m.fetched_at IS NOT NULL "
                "AND to_timestamp(l.block_timestamp) >= date_trunc('second', m.fetched_at) "
                "AND ((l.event = 'MetadataUpdate' AND (l.args->>'tokenId')::numeric = m.token_id) "
                " OR (l.event = 'BatchMetadataUpdate' AND m.token_id BETWEEN "
                " (l.args->>'fromTokenId')::numeric AND (l.args->>'toTokenId')::numeric))"
            )
        )
    return int(result.rowcount or 0)


def due(engine: Engine, now: datetime, limit: int = 20) -> list[tuple[int, str, int, str]]:
    """Tokens to resolve now: (chain, contract, token id, standard)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.chain_id, m.contract, m.token_id, "
                "COALESCE(f.standard, b.standard, 'erc721') FROM nft_metadata m "
                "LEFT JOIN contract_facts f USING (chain_id, contract) "
                "LEFT JOIN LATERAL (SELECT standard FROM nft_balances n WHERE "
                " n.chain_id = m.chain_id AND n.contract = m.contract LIMIT 1) b ON true "
                "WHERE m.status IN ('pending', 'failed') "
                "AND (m.next_attempt_at IS NULL OR m.next_attempt_at <= :now) "
                "ORDER BY m.next_attempt_at NULLS FIRST LIMIT :n"
            ),
            {"now": now, "n": limit},
        ).all()
    return [(int(c), str(a), int(t), str(s)) for c, a, t, s in rows]


def store_result(
    engine: Engine,
    chain_id: int,
    contract: str,
    token_id: int,
    now: datetime,
    outcome: tuple[str, Metadata] | MetadataError,
) -> None:
    key = {"c": chain_id, "a": contract, "t": token_id, "now": now}
    with engine.begin() as conn:
        if isinstance(outcome, MetadataError):
            attempts = conn.execute(
                text(
                    "INSERT INTO nft_metadata (chain_id, contract, token_id, status, reason, "
                    "attempts, fetched_at) VALUES (:c, :a, :t, 'failed', :r, 1, :now) "
                    "ON CONFLICT (chain_id, contract, token_id) DO UPDATE SET status = 'failed', "
                    "reason = :r, attempts = nft_metadata.attempts + 1, fetched_at = :now "
                    "RETURNING attempts"
                ),
                {**key, "r": str(outcome)[:1000]},
            ).scalar_one()
            conn.execute(
                text(
                    "UPDATE nft_metadata SET next_attempt_at = :next "
                    "WHERE chain_id = :c AND contract = :a AND token_id = :t"
                ),
                {**key, "next": now + timedelta(seconds=retry_delay_s(int(attempts)))},
            )
            return
        uri, meta = outcome
        conn.execute(
            text(
                "INSERT INTO nft_metadata (chain_id, contract, token_id, status, token_uri, name, "
                "description, image, image_url, animation_url, attributes, content_type, reason, "
                "attempts, fetched_at, next_attempt_at) VALUES (:c, :a, :t, 'ok', :uri, :name, "
                ":description, :image, :image_url, :animation_url, CAST(:attributes AS jsonb), "
                ":content_type, NULL, 0, :now, NULL) "
                "ON CONFLICT (chain_id, contract, token_id) DO UPDATE SET status = 'ok', "
                "token_uri = :uri, name = :name, description = :description, image = :image, "
                "image_url = :image_url, animation_url = :animation_url, "
                "attributes = CAST(:attributes AS jsonb), content_type = :content_type, "
                "reason = NULL, attempts = 0, fetched_at = :now, next_attempt_at = NULL"
            ),
            {
                **key,
                "uri": uri[:MAX_URI_CHARS],
                "name": meta.name,
                "description": meta.description,
                "image": meta.image,
                "image_url": meta.image_url,
                "animation_url": meta.animation_url,
                "attributes": json.dumps(meta.attributes),
                "content_type": meta.content_type,
            },
        )


def resolve_and_store(
    engine: Engine,
    call: EthCall,
    chain_id: int,
    contract: str,
    token_id: int,
    standard: str,
    settings: ChainSettings,
    now: datetime,
) -> tuple[str, Metadata] | MetadataError:
    try:
        outcome: tuple[str, Metadata] | MetadataError = resolve(
            call, standard, contract, token_id, settings
        )
    except MetadataError as exc:
        outcome = exc
    store_result(engine, chain_id, contract, token_id, now, outcome)
    return outcome
