"""Subscriptions: a webhook per subscriber per metric, which Alertmanager calls on firing
and on resolve (``core.metrics.alertmanager`` turns them into routes).

Who may subscribe: an app user to any metric; a game server (its key) to its own game's
metrics and the platform-wide ones. Each subscription belongs to whoever created it; only
its owner lists or deletes it. Creating the same (owner, metric, URL) twice answers the
existing subscription (idempotent).

A webhook URL must be ``https`` (``http`` only on the local stack), carry no credentials
(``user:password@``: they would sit in Alertmanager's configuration and logs; put a token in
the path instead), name a host, and, outside the local stack, not point at a loopback,
private or link-local address (Alertmanager would call into the platform's own network).
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.metrics.catalog import CatalogEntry
from core.platform.errors import Forbidden, Invalid, NotFound

MAX_URL = 2048
MAX_PER_OWNER = 1000


@dataclass(frozen=True)
class Owner:
    kind: str  # "user" or "game"
    id: str

    def may_subscribe(self, metric: CatalogEntry) -> bool:
        return self.kind == "user" or metric.game_id in (None, self.id)


@dataclass(frozen=True)
class Subscription:
    id: uuid.UUID
    metric_key: str
    webhook_url: str
    created_at: datetime


Resolver = Callable[[str], list[str]]  # host name -> its addresses (IPv4 and IPv6 text)
# Names that are never the public internet: loopback, mDNS, cloud metadata and
# cluster-internal zones (a name ending in one of them, or equal to it).
_INTERNAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa", "lan")


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to now ([] when it does not resolve)."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in found})


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as numbers means, in any form a resolver accepts:
    ``127.0.0.1``, ``::1``, but also ``127.1``, ``0x7f.1``, ``2130706433`` or ``0``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def validate_webhook_url(url: str, *, local: bool, resolve: Resolver | None = resolve_host) -> str:
    """The URL if Alertmanager may call it; :class:`Invalid` saying why not otherwise.

    Outside a local stack the host must be public: not an address of a private, loopback,
    link-local, shared (100.64/10), reserved or multicast range in any of its written forms,
    not a name of an internal zone (``localhost``, ``*.internal``, ``*.local``...) nor a
    single label, and (with ``resolve``) a name every address of which is public. The
    check is made when the subscription is created; delivery (Alertmanager) resolves again
    later, so where it runs its egress must be limited too (docs/metrics.md)."""
    if len(url) > MAX_URL:
        raise Invalid(f"webhook_url is longer than {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise Invalid("webhook_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"webhook_url is not a valid URL ({exc})") from None
    allowed = ("https", "http") if local else ("https",)
    if parts.scheme not in allowed:
        raise Invalid(
            f"webhook_url must start with {' or '.join(s + '://' for s in allowed)}"
            f" (got {parts.scheme + '://' if parts.scheme else 'no scheme'})"
        )
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            "webhook_url must not carry credentials (user:password@); put a secret token in "
            "its path or query instead"
        )
    if not parts.hostname:
        raise Invalid("webhook_url must name a host")
    if port == 0:
        raise Invalid("webhook_url has port 0")
    if not local:
        _check_public_host(parts.hostname, resolve)
    return url


NOT_PUBLIC = "webhook_url must be a public address, not the platform's own network"


def _check_public_host(hostname: str, resolve: Resolver | None) -> None:
    host = hostname.lower().rstrip(".")
    address = _literal_address(host)
    if address is not None:
        if not _is_public(address):
            raise Invalid(f"{NOT_PUBLIC} ({host} is {address})")
        return
    if "." not in host or any(host == z or host.endswith("." + z) for z in _INTERNAL_SUFFIXES):
        raise Invalid(f"{NOT_PUBLIC} ({host!r} is not a public internet name)")
    if resolve is None:
        return
    addresses = resolve(host)
    if not addresses:
        raise Invalid(f"webhook_url's host {host!r} does not resolve; check the name")
    private = [a for a in addresses if not _is_public(ipaddress.ip_address(a))]
    if private:
        raise Invalid(f"{NOT_PUBLIC} ({host!r} resolves to {', '.join(private)})")


_INSERT = text(
    """
    INSERT INTO metric_subscriptions (id, metric_id, owner_kind, owner_id, webhook_url)
    VALUES (:id, :metric_id, :kind, :owner, :url)
    ON CONFLICT (owner_kind, owner_id, metric_id, webhook_url) DO NOTHING
    """
)
_SELECT = """
    SELECT s.id, m.key AS metric_key, s.webhook_url, s.created_at
    FROM metric_subscriptions s JOIN metrics m ON m.id = s.metric_id
    WHERE s.owner_kind = :kind AND s.owner_id = :owner
"""


def subscribe(
    conn: Connection,
    owner: Owner,
    metric: CatalogEntry,
    webhook_url: str,
    *,
    local: bool,
    resolve: Resolver | None = resolve_host,
) -> tuple[Subscription, bool]:
    """The subscription, and whether it was created now (False: it existed)."""
    if not owner.may_subscribe(metric):
        raise Forbidden(f"game {owner.id!r} may subscribe only to its own game's metrics")
    url = validate_webhook_url(webhook_url, local=local, resolve=resolve)
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:o))"), {"o": f"{owner.kind}:{owner.id}"}
    )
    count = conn.execute(
        text("SELECT count(*) FROM metric_subscriptions WHERE owner_kind = :k AND owner_id = :o"),
        {"k": owner.kind, "o": owner.id},
    ).scalar_one()
    new_id = uuid.uuid4()
    created = (
        count < MAX_PER_OWNER
        and conn.execute(
            _INSERT,
            {
                "id": new_id,
                "metric_id": metric.id,
                "kind": owner.kind,
                "owner": owner.id,
                "url": url,
            },
        ).rowcount
        == 1
    )
    row = conn.execute(
        text(_SELECT + " AND s.metric_id = :metric_id AND s.webhook_url = :url"),
        {"kind": owner.kind, "owner": owner.id, "metric_id": metric.id, "url": url},
    ).one_or_none()
    if row is None:
        raise Invalid(f"at most {MAX_PER_OWNER} subscriptions per subscriber; delete some first")
    return Subscription(**row._mapping), created


def subscriptions_of(conn: Connection, owner: Owner) -> list[Subscription]:
    rows = conn.execute(
        text(_SELECT + " ORDER BY s.created_at, s.id"), {"kind": owner.kind, "owner": owner.id}
    )
    return [Subscription(**row._mapping) for row in rows]


def unsubscribe(conn: Connection, owner: Owner, subscription_id: uuid.UUID) -> None:
    deleted = conn.execute(
        text(
            "DELETE FROM metric_subscriptions WHERE id = :id AND owner_kind = :kind"
            " AND owner_id = :owner"
        ),
        {"id": subscription_id, "kind": owner.kind, "owner": owner.id},
    ).rowcount
    if not deleted:
        raise NotFound(f"no subscription {subscription_id} of yours")
