"""``/v1/wallets``: Sign-In with Ethereum (EIP-4361) links a wallet to the signed-in app user.

The app asks for a nonce, has the wallet sign an EIP-4361 message that names it, and sends
message and signature to ``/verify``. Every route needs the app user's bearer token; what the
checks refuse (``core.identity.siwe``, ``core.identity.wallets``) reaches the client with its
status and a stable ``code`` through ``api/errors.py``. See docs/wallets.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api.auth import APP_USER_ERRORS, QUOTA_ERRORS, AppUserDep, Caller, spend_quota
from api.body import limited_body_route
from api.deps import EngineDep, SettingsDep
from api.errors import NOT_JSON, error_responses
from core.identity import wallets
from core.identity.siwe import MAX_MESSAGE_CHARS, Expectations
from core.platform.config import WalletSettings

MAX_SIGNATURE_CHARS = 8192  # a contract wallet's signature may be longer than 65 bytes
MAX_BODY_BYTES = 32 * 1024

router = APIRouter(
    prefix="/v1/wallets",
    tags=["wallets"],
    route_class=limited_body_route(
        lambda _settings: MAX_BODY_BYTES, "send one {message, signature} object"
    ),
)


class NoncePublic(BaseModel):
    nonce: str = Field(description="Put it in the message's Nonce field; single use")
    expires_at: datetime
    domain: str = Field(description="The message's domain must be this")
    uri: str = Field(description="The message's URI must be this or below it")
    chain_ids: list[int] = Field(description="The message's Chain ID must be one of these")


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        description="The EIP-4361 message exactly as the wallet signed it (LF line breaks)",
    )
    signature: str = Field(
        min_length=4,
        max_length=MAX_SIGNATURE_CHARS,
        pattern=r"^0x[0-9a-fA-F]+$",
        description="0x-hex signature: 65 bytes for a key (EIP-191), any for a contract wallet",
    )


class WalletPublic(BaseModel):
    address: str = Field(description="EIP-55 checksummed; the same on every EVM chain")
    is_primary: bool
    kind: str = Field(description="eoa (a key) or contract (verified with EIP-1271)")
    chain_id: int = Field(description="The chain the sign-in was verified on")
    linked_at: datetime


class VerifyPublic(WalletPublic):
    created: bool = Field(description="False when the wallet was already linked to this user")


class WalletsPublic(BaseModel):
    wallets: list[WalletPublic] = Field(description="The primary one first")
    primary: str | None


class UnlinkPublic(BaseModel):
    unlinked: str
    primary: str | None = Field(description="The primary wallet now (null: none left)")


Address = Annotated[
    str, Path(min_length=42, max_length=42, description="0x-prefixed address, any case")
]
_NOT_LINKED = error_responses({404: "The wallet is not linked to this user (wallet_not_found)"})


def _public(link: wallets.WalletLink) -> WalletPublic:
    return WalletPublic(
        address=link.address,
        is_primary=link.is_primary,
        kind=link.kind,
        chain_id=link.chain_id,
        linked_at=link.linked_at,
    )


def expectations(settings: WalletSettings) -> Expectations:
    return Expectations(
        domain=settings.siwe_expected_domain,
        uri=settings.siwe_expected_uri,
        chain_ids=frozenset(settings.wallet_rpc_urls),
        clock_skew=timedelta(seconds=settings.wallet_clock_skew_s),
        max_age=timedelta(seconds=settings.wallet_nonce_ttl_s),
    )


@router.post(
    "/nonce",
    status_code=201,
    response_model=NoncePublic,
    summary="A single-use nonce for a sign-in message",
    responses={**APP_USER_ERRORS, **QUOTA_ERRORS},
)
def issue_nonce(
    request: Request, user_id: AppUserDep, engine: EngineDep, settings: SettingsDep
) -> NoncePublic:
    spend_quota(request, settings, Caller(None, user_id))
    with Session(engine) as session, session.begin():
        issued = wallets.issue_nonce(
            session,
            user_id,
            ttl=timedelta(seconds=settings.wallet_nonce_ttl_s),
            keep=settings.wallet_max_nonces_per_user,
            now=datetime.now(UTC),
        )
    return NoncePublic(
        nonce=issued.nonce,
        expires_at=issued.expires_at,
        domain=settings.siwe_expected_domain,
        uri=settings.siwe_expected_uri,
        chain_ids=sorted(settings.wallet_rpc_urls),
    )


@router.post(
    "/verify",
    response_model=VerifyPublic,
    summary="Verify a signed EIP-4361 message and link its wallet",
    responses={
        **APP_USER_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **error_responses(
            {
                403: "The signature is not the address's (siwe_bad_signature)",
                409: "Nonce already used (siwe_nonce_used) or the wallet is another user's "
                "(wallet_linked_to_another_user)",
                413: f"Body larger than {MAX_BODY_BYTES} bytes",
                422: "Malformed message, wrong domain/URI/chain, expired, not yet valid, "
                "unknown or expired nonce: the code says which",
                503: "The chain's node did not answer the EIP-1271 check (chain_unavailable)",
            }
        ),
    },
)
def verify(
    request: Request,
    body: VerifyRequest,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> VerifyPublic:
    spend_quota(request, settings, Caller(None, user_id))
    oracle = wallets.JsonRpcEip1271(settings.wallet_rpc_urls, settings.wallet_rpc_timeout_s)
    with Session(engine) as session, session.begin():
        link, created = wallets.verify_sign_in(
            session,
            user_id,
            body.message,
            body.signature,
            expected=expectations(settings),
            oracle=oracle,
            now=datetime.now(UTC),
        )
    return VerifyPublic(**_public(link).model_dump(), created=created)


@router.get(
    "",
    response_model=WalletsPublic,
    summary="The signed-in user's wallets",
    responses={**APP_USER_ERRORS},
)
def list_wallets(user_id: AppUserDep, engine: EngineDep) -> WalletsPublic:
    with Session(engine) as session:
        links = wallets.list_wallets(session, user_id)
    primary = next((link.address for link in links if link.is_primary), None)
    return WalletsPublic(wallets=[_public(link) for link in links], primary=primary)


@router.post(
    "/{address}/primary",
    response_model=WalletPublic,
    summary="Make one of the user's wallets the primary one",
    responses={**APP_USER_ERRORS, **QUOTA_ERRORS, **_NOT_LINKED},
)
def set_primary(
    request: Request,
    address: Address,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> WalletPublic:
    spend_quota(request, settings, Caller(None, user_id))
    checksummed = wallets.normalize_address(address)
    with Session(engine) as session, session.begin():
        link = wallets.set_primary(session, user_id, checksummed)
    return _public(link)


@router.delete(
    "/{address}",
    response_model=UnlinkPublic,
    summary="Unlink one of the user's wallets",
    responses={**APP_USER_ERRORS, **QUOTA_ERRORS, **_NOT_LINKED},
)
def unlink(
    request: Request,
    address: Address,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> UnlinkPublic:
    spend_quota(request, settings, Caller(None, user_id))
    checksummed = wallets.normalize_address(address)
    with Session(engine) as session, session.begin():
        primary = wallets.unlink_wallet(session, user_id, checksummed)
    return UnlinkPublic(unlinked=checksummed, primary=primary)
