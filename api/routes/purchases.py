"""``/v1/purchases``: purchases paid in the token, which burn it only with the holder's
signature (EIP-2612 permit). The app asks for what to sign (``/intent``), the wallet signs,
the app posts the signature (``/authorization``); the chain writer submits permit + burn.
The app and the game read the outcome (``GET``); it is also published on
rewards.outcomes.v1. See docs/chain.md#burns-need-the-holder.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.auth import APP_USER_ERRORS, CALLER_ERRORS, QUOTA_ERRORS, AppUserDep, CallerDep
from api.body import limited_body_route
from api.deps import EngineDep, SettingsDep
from api.errors import NOT_JSON, error_responses
from core.chain.rpc import Rpc
from core.platform.config import Settings
from core.rewards import purchases

MAX_BODY_BYTES = 4 * 1024

router = APIRouter(
    prefix="/v1/purchases",
    tags=["purchases"],
    route_class=limited_body_route(lambda _settings: MAX_BODY_BYTES, "send one small object"),
)

CommandId = Annotated[uuid.UUID, Path(description="The purchase's burn command id")]
NOT_FOUND = error_responses({404: "No such purchase of yours (not_found)"})
STATE = error_responses(
    {409: "Nothing to authorize, no wallet, or insufficient balance (conflict)"}
)
CHAIN_DOWN = error_responses({503: "The chain node or the deployment is not available"})


class PermitTypedData(BaseModel):
    """EIP-712 typed data for ``eth_signTypedData_v4``: the token's Permit."""

    types: dict[str, list[dict[str, str]]]
    primaryType: str
    domain: dict[str, Any]
    message: dict[str, Any]


class PermitIntent(BaseModel):
    command_id: uuid.UUID
    typed_data: PermitTypedData = Field(description="Sign this with the wallet, as is")


class Authorization(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="The signing wallet")
    nonce: int = Field(ge=0, description="message.nonce of the typed data signed")
    deadline: int = Field(
        gt=0, le=2**63 - 1, description="message.deadline of the typed data signed (UNIX time)"
    )
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$", description="65-byte signature (r, s, v), hex"
    )


class PurchasePublic(BaseModel):
    command_id: uuid.UUID
    game_id: str
    player_id: str
    status: str = Field(
        description="pending, needs_authorization, queued, submitted, confirmed or failed"
    )
    reason: str | None = Field(description="Why it waits or failed")
    amount: Decimal
    token: str
    wallet: str | None = Field(description="The wallet burned from")
    tx_hash: str | None
    block_number: int | None
    source_event_id: uuid.UUID


def _public(p: purchases.Purchase) -> PurchasePublic:
    return PurchasePublic(
        command_id=p.command_id,
        game_id=p.game_id,
        player_id=p.player_id,
        status=p.status,
        reason=p.reason,
        amount=p.amount,
        token=p.token,
        wallet=p.wallet,
        tx_hash=p.tx_hash,
        block_number=p.block_number,
        source_event_id=p.source_event_id,
    )


def _rpc(settings: SettingsDep) -> Iterator[Rpc]:
    rpc = Rpc(settings.writer_rpc, timeout_s=5.0, attempts=2)
    try:
        yield rpc
    finally:
        rpc.close()


RpcDep = Annotated[Rpc, Depends(_rpc)]


def _addresses(settings: Settings) -> purchases.ChainAddresses:
    return purchases.chain_addresses(
        settings.writer_chain, settings.writer_distributor_address, settings.deployments_dir
    )


@router.post(
    "/{command_id}/intent",
    response_model=PermitIntent,
    summary="What the wallet must sign to pay this purchase: an EIP-2612 permit (app user)",
    responses={**APP_USER_ERRORS, **QUOTA_ERRORS, **NOT_FOUND, **STATE, **CHAIN_DOWN},
)
def intent(
    command_id: CommandId,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
    rpc: RpcDep,
) -> PermitIntent:
    typed = purchases.permit_request(
        engine,
        rpc,
        _addresses(settings),
        user_id,
        command_id,
        ttl_s=settings.writer_permit_ttl_s,
        now=datetime.now(UTC),
    )
    return PermitIntent(command_id=command_id, typed_data=PermitTypedData(**typed))


@router.post(
    "/{command_id}/authorization",
    status_code=202,
    response_model=PurchasePublic,
    summary="The wallet's signature of the permit: the chain writer burns (app user)",
    responses={
        **APP_USER_ERRORS,
        **QUOTA_ERRORS,
        **NOT_JSON,
        **NOT_FOUND,
        **STATE,
        **CHAIN_DOWN,
    },
)
def authorization(
    command_id: CommandId,
    body: Authorization,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
    rpc: RpcDep,
) -> PurchasePublic:
    return _public(
        purchases.authorize(
            engine,
            rpc,
            _addresses(settings),
            user_id,
            command_id,
            owner=body.owner,
            nonce=body.nonce,
            deadline=body.deadline,
            signature=body.signature,
            now=datetime.now(UTC),
        )
    )


@router.get(
    "/{command_id}",
    response_model=PurchasePublic,
    summary="Where a purchase's burn is (the app user who owns the player, or its game)",
    responses={**CALLER_ERRORS, **NOT_FOUND},
)
def status(command_id: CommandId, caller: CallerDep, engine: EngineDep) -> PurchasePublic:
    return _public(
        purchases.purchase(engine, command_id, user_id=caller.user_id, game_id=caller.game_id)
    )
