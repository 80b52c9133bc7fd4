"""Wallets of app users: sign-in nonces, EIP-4361 verification (EOA and EIP-1271), links.

The message rules are pure (``core.identity.siwe``); this module adds what needs storage or
a chain: a nonce is issued to one user, lives ``wallet_nonce_ttl_s`` and is consumed by the
one verification that succeeds with it; an EOA signature is recovered (EIP-191), any other
is asked of the address's contract on the message's chain (EIP-1271 ``isValidSignature``
over JSON-RPC). A verified wallet is linked to the user: an address belongs to one user at
most, a user has one primary wallet, and every link, unlink and primary change is written
to ``link_audit_log`` in the same transaction. Changes of one user's links are serialized
by a row lock on the user.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import httpx
from eth_abi import encode as abi_encode
from eth_utils import is_hex_address, to_checksum_address
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.events.models import RewardCommandRow
from core.identity.models import AppUser, LinkAuditLog, PlayerLink, UserWallet, WalletNonce
from core.identity.siwe import (
    BadSignature,
    Expectations,
    SiweMessage,
    check_message,
    message_hash,
    parse_message,
    recover_signer,
    signature_bytes,
)
from core.platform.errors import Conflict, Invalid, NotFound, Unavailable
from core.rewards.commands import RewardStatus

NONCE_ALPHABET = string.ascii_letters + string.digits
NONCE_LENGTH = 20  # ~119 bits
# The selector of isValidSignature(bytes32,bytes), which is also the answer "valid".
EIP1271_MAGIC = bytes.fromhex("1626ba7e")

WalletKind = Literal["eoa", "contract"]


# ---- refusals --------------------------------------------------------------------------------


class NonceUnknown(Invalid):
    code = "siwe_nonce_unknown"


class NonceExpired(Invalid):
    code = "siwe_nonce_expired"


class NonceUsed(Conflict):
    code = "siwe_nonce_used"


class InvalidAddress(Invalid):
    code = "invalid_address"


class WalletTaken(Conflict):
    code = "wallet_linked_to_another_user"


class UnknownWallet(NotFound):
    code = "wallet_not_found"


class ChainUnavailable(Unavailable):
    code = "chain_unavailable"


class UnknownUser(NotFound):
    code = "user_not_found"


# ---- nonces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedNonce:
    nonce: str
    expires_at: datetime


def lock_user(session: Session, user_id: str) -> None:
    """Serialize changes of one user's links (and refuse an unknown user)."""
    found = session.execute(
        select(AppUser.user_id).where(AppUser.user_id == user_id).with_for_update()
    ).first()
    if found is None:
        raise UnknownUser(f"no app user {user_id!r}")


def issue_nonce(
    session: Session, user_id: str, *, ttl: timedelta, keep: int, now: datetime
) -> IssuedNonce:
    """A new single-use nonce for ``user_id``; the user keeps at most ``keep`` unused
    nonces (the oldest go first), so storage per user stays bounded. Used ones are kept
    until they expire, so a replay is told it is one (after that, the message is too old)."""
    lock_user(session, user_id)
    session.execute(
        delete(WalletNonce).where(WalletNonce.user_id == user_id, WalletNonce.expires_at <= now)
    )
    unused = (WalletNonce.user_id == user_id, WalletNonce.used_at.is_(None))
    kept = (
        select(WalletNonce.nonce)
        .where(*unused)
        .order_by(WalletNonce.created_at.desc(), WalletNonce.nonce)
        .limit(keep - 1)
    )
    session.execute(delete(WalletNonce).where(*unused, WalletNonce.nonce.not_in(kept)))
    nonce = "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))
    expires_at = now + ttl
    session.add(WalletNonce(nonce=nonce, user_id=user_id, created_at=now, expires_at=expires_at))
    session.flush()
    return IssuedNonce(nonce, expires_at)


def _check_nonce(session: Session, user_id: str, nonce: str, now: datetime) -> None:
    row = session.get(WalletNonce, nonce)
    if row is None or row.user_id != user_id:
        raise NonceUnknown(
            f"nonce {nonce!r} was not issued to this user (or was dropped for a newer one): "
            "ask POST /v1/wallets/nonce for one and sign a message with it"
        )
    if row.used_at is not None:
        raise NonceUsed(f"nonce {nonce!r} was already used: each sign-in needs a new nonce")
    if row.expires_at <= now:
        raise NonceExpired(f"nonce {nonce!r} expired at {row.expires_at.isoformat()}")


def _consume_nonce(session: Session, user_id: str, nonce: str, now: datetime) -> None:
    consumed = session.execute(
        update(WalletNonce)
        .where(
            WalletNonce.nonce == nonce,
            WalletNonce.user_id == user_id,
            WalletNonce.used_at.is_(None),
            WalletNonce.expires_at > now,
        )
        .values(used_at=now)
        .returning(WalletNonce.nonce)
    ).first()
    if consumed is None:  # another request used it between the check and now
        raise NonceUsed(f"nonce {nonce!r} was already used: each sign-in needs a new nonce")


# ---- contract wallets (EIP-1271) -------------------------------------------------------------


class SignatureOracle(Protocol):
    """Asks a chain whether a contract accepts a signature (EIP-1271)."""

    def is_valid_signature(
        self, chain_id: int, address: str, digest: bytes, signature: bytes
    ) -> bool: ...


@dataclass(frozen=True)
class JsonRpcEip1271:
    """EIP-1271 over JSON-RPC: ``eth_call`` of ``isValidSignature(hash, signature)`` at the
    latest block of the chain's node; true only for the magic value ``0x1626ba7e``."""

    rpc_urls: dict[int, str]
    timeout_s: float = 5.0

    def is_valid_signature(
        self, chain_id: int, address: str, digest: bytes, signature: bytes
    ) -> bool:
        url = self.rpc_urls.get(chain_id)
        if url is None:  # check_message refuses unconfigured chains first
            return False
        data = EIP1271_MAGIC + abi_encode(["bytes32", "bytes"], [digest, signature])
        call: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_call",
            "params": [{"to": address, "data": "0x" + data.hex()}, "latest"],
        }
        try:
            response = httpx.post(url, json=call, timeout=self.timeout_s)
            response.raise_for_status()
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(
                f"the node of chain {chain_id} did not answer the EIP-1271 check ({exc}); "
                "nothing was linked, retry later"
            ) from exc
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            message = str(error.get("message", "")).lower()
            if error.get("code") == 3 or "revert" in message or "opcode" in message:
                return False  # the contract refused (no isValidSignature, or it reverted)
            raise ChainUnavailable(
                f"the node of chain {chain_id} refused the EIP-1271 call ({message or error}); "
                "nothing was linked, retry later"
            )
        result = str(answer.get("result") or "0x").removeprefix("0x")
        return len(result) >= 8 and bytes.fromhex(result[:8]) == EIP1271_MAGIC


# ---- verification and links ----------------------------------------------------------------


@dataclass(frozen=True)
class WalletLink:
    address: str
    user_id: str
    is_primary: bool
    kind: str
    chain_id: int
    linked_at: datetime


def _link_of(row: UserWallet) -> WalletLink:
    return WalletLink(
        row.address, row.user_id, row.is_primary, row.kind, row.chain_id, row.linked_at
    )


def normalize_address(address: str) -> str:
    """The EIP-55 form of a 0x-prefixed 20-byte hex address (any case accepted)."""
    if not is_hex_address(address) or not address.startswith(("0x", "0X")):
        raise InvalidAddress(f"{address!r} is not a 0x-prefixed 20-byte hex address")
    return to_checksum_address(address)


def signature_kind(
    message: SiweMessage, text: str, signature: bytes, oracle: SignatureOracle
) -> WalletKind:
    """``eoa`` when the address's key signed the text, ``contract`` when its contract accepts
    the signature (EIP-1271); :class:`BadSignature` otherwise."""
    if recover_signer(text, signature) == message.address:
        return "eoa"
    if oracle.is_valid_signature(message.chain_id, message.address, message_hash(text), signature):
        return "contract"
    raise BadSignature(
        f"the signature is not {message.address}'s: neither its key (EIP-191) nor its "
        f"contract on chain {message.chain_id} (EIP-1271) signed this message"
    )


def verify_sign_in(
    session: Session,
    user_id: str,
    text: str,
    signature: str,
    *,
    expected: Expectations,
    oracle: SignatureOracle,
    now: datetime,
) -> tuple[WalletLink, bool]:
    """Check a signed EIP-4361 message of ``user_id`` and link its wallet to them.

    Returns the link and whether it is new. The nonce is consumed only by a verification
    that succeeds, in the transaction that links the wallet."""
    message = parse_message(text)
    check_message(message, expected, now)
    _check_nonce(session, user_id, message.nonce, now)
    kind = signature_kind(message, text, signature_bytes(signature), oracle)
    _consume_nonce(session, user_id, message.nonce, now)
    return link_wallet(
        session, user_id, message.address, kind=kind, chain_id=message.chain_id, now=now
    )


def _audit(session: Session, user_id: str, action: str, subject: str, **detail: Any) -> None:
    session.add(LinkAuditLog(user_id=user_id, action=action, subject=subject, detail=detail))


def link_wallet(
    session: Session,
    user_id: str,
    address: str,
    *,
    kind: WalletKind,
    chain_id: int,
    now: datetime,
) -> tuple[WalletLink, bool]:
    """Link a verified ``address`` to ``user_id`` (idempotent for the same user; the first
    wallet becomes primary). :class:`WalletTaken` when another user has it."""
    lock_user(session, user_id)
    has_primary = session.scalar(
        select(func.count())
        .select_from(UserWallet)
        .where(UserWallet.user_id == user_id, UserWallet.is_primary)
    )
    inserted = session.execute(
        insert(UserWallet)
        .values(
            address=address,
            user_id=user_id,
            is_primary=not has_primary,
            kind=kind,
            chain_id=chain_id,
            linked_at=now,
        )
        .on_conflict_do_nothing(index_elements=["address"])
        .returning(UserWallet.address)
    ).first()
    row = session.execute(
        select(UserWallet)
        .where(UserWallet.address == address)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if row.user_id != user_id:
        raise WalletTaken(
            f"wallet {address} is linked to another user; that user must unlink it first"
        )
    if inserted is not None and row.is_primary:
        _release_rewards_awaiting_wallet(session, user_id)
    if inserted is not None:
        _audit(
            session,
            user_id,
            "wallet_linked",
            address,
            kind=kind,
            chain_id=chain_id,
            primary=row.is_primary,
        )
    return _link_of(row), inserted is not None


def _release_rewards_awaiting_wallet(session: Session, user_id: str) -> None:
    """The link hook of the chain writer: rewards of the user's players that waited for a
    wallet go back to ``pending`` in the link's transaction, so the writer mints them on its
    next pass (it also re-checks waiting rewards itself, e.g. after a player link)."""
    session.execute(
        update(RewardCommandRow)
        .where(
            RewardCommandRow.status == RewardStatus.awaiting_wallet,
            tuple_(RewardCommandRow.game_id, RewardCommandRow.player_id).in_(
                select(PlayerLink.game_id, PlayerLink.player_id).where(
                    PlayerLink.user_id == user_id
                )
            ),
        )
        .values(status=RewardStatus.pending, updated_at=func.now())
    )


def list_wallets(session: Session, user_id: str) -> list[WalletLink]:
    rows = session.scalars(
        select(UserWallet)
        .where(UserWallet.user_id == user_id)
        .order_by(UserWallet.is_primary.desc(), UserWallet.linked_at, UserWallet.address)
    )
    return [_link_of(row) for row in rows]


def _own_wallet(session: Session, user_id: str, address: str) -> UserWallet:
    row = session.get(UserWallet, address, populate_existing=True)
    if row is None or row.user_id != user_id:
        raise UnknownWallet(f"wallet {address} is not linked to this user")
    return row


def set_primary(session: Session, user_id: str, address: str) -> WalletLink:
    """Make one of the user's wallets the primary one (a no-op when it already is)."""
    lock_user(session, user_id)
    row = _own_wallet(session, user_id, address)
    if row.is_primary:
        return _link_of(row)
    previous = session.scalar(
        select(UserWallet.address).where(UserWallet.user_id == user_id, UserWallet.is_primary)
    )
    # Two statements: the partial unique index allows one primary per user at every step.
    session.execute(
        update(UserWallet)
        .where(UserWallet.user_id == user_id, UserWallet.is_primary)
        .values(is_primary=False)
    )
    session.execute(update(UserWallet).where(UserWallet.address == address).values(is_primary=True))
    _audit(session, user_id, "wallet_primary_set", address, previous=previous)
    return _link_of(_own_wallet(session, user_id, address))


def unlink_wallet(session: Session, user_id: str, address: str) -> str | None:
    """Unlink one of the user's wallets; when it was the primary one, the most recently
    linked other wallet becomes primary. Returns the primary wallet after (None: none left)."""
    lock_user(session, user_id)
    row = _own_wallet(session, user_id, address)
    was_primary = row.is_primary
    session.execute(delete(UserWallet).where(UserWallet.address == address))
    _audit(session, user_id, "wallet_unlinked", address, was_primary=was_primary)
    if not was_primary:
        return primary_wallet(session, user_id)
    successor = session.scalars(
        select(UserWallet)
        .where(UserWallet.user_id == user_id)
        .order_by(UserWallet.linked_at.desc(), UserWallet.address)
        .limit(1)
    ).first()
    if successor is None:
        return None
    successor.is_primary = True
    session.flush()
    _audit(
        session,
        user_id,
        "wallet_primary_set",
        successor.address,
        previous=address,
        reason="the primary wallet was unlinked",
    )
    return successor.address


def primary_wallet(session: Session, user_id: str) -> str | None:
    """The address of the user's primary wallet, or None."""
    return session.scalar(
        select(UserWallet.address).where(UserWallet.user_id == user_id, UserWallet.is_primary)
    )
