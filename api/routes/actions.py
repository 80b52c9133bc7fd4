"""``/v1/chain/{chain_id}/actions/<kind>`` and ``/v1/actions``: the app's write flows, signed
by the user's own wallet (non-custodial).

The app asks for an action (stake, trade, bridge); the API answers the unsigned EIP-1559
transactions to sign — missing approvals first, then the action — after simulating them
from the user's linked wallet: a refusal of the chain is a 422 ``would_revert`` whose
``detail`` is the decoded reason. The app signs and sends them, posts the action's
transaction hash to ``/v1/actions/{id}/submitted`` (checked against what was prepared) and
follows ``GET /v1/actions/{id}``: prepared → submitted → confirmed or failed (a bridge
transfer is ``relaying`` until the relayer completes it on the destination chain). Only the
owner sees an action. The routes validate and call :mod:`core.chain.actions`,
:mod:`core.chain.action_store` and :mod:`core.chain.action_tracking`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.auth import APP_USER_ERRORS, QUOTA_ERRORS, AppUserDep
from api.body import limited_body_route
from api.deps import EngineDep, SettingsDep
from api.errors import NOT_JSON, error_responses
from core.chain import action_params, action_store, action_tracking, actions
from core.chain.deployments import StrideContracts, stride_contracts
from core.chain.node import Node, NodeUnavailable
from core.identity.wallets import list_wallets
from core.platform.config import Settings
from core.platform.errors import Conflict, Forbidden, NotFound

MAX_BODY_BYTES = 8 * 1024

router = APIRouter(
    tags=["actions"],
    route_class=limited_body_route(
        lambda _settings: MAX_BODY_BYTES, "send one JSON object of the action's parameters"
    ),
    responses={**APP_USER_ERRORS, **QUOTA_ERRORS},
)

ChainId = Annotated[int, Path(ge=1, le=2**53, description="EVM chain id, e.g. 31337")]
ActionId = Annotated[uuid.UUID, Path(description="The id the prepare call answered")]
TX_HASH = r"^0x[0-9a-fA-F]{64}$"


class NoWallet(Conflict):
    code = "no_wallet_linked"


class WalletNotLinked(Forbidden):
    code = "wallet_not_linked"


class Approval(BaseModel):
    description: str
    transaction: dict[str, Any] = Field(description="Unsigned EIP-1559 transaction, hex fields")


class Destination(BaseModel):
    """The bridge transfer's leg on the destination chain."""

    chain_id: int
    nonce: int
    status: str = Field(description="relaying, confirmed, or unknown (chain not configured)")
    tx_hash: str | None
    block_number: int | None
    reason: str | None = None


class ActionPublic(BaseModel):
    id: uuid.UUID
    kind: str
    chain_id: int
    wallet: str = Field(description="The linked wallet that signs (EIP-55)")
    status: str = Field(description="prepared, submitted, relaying (bridge), confirmed, failed")
    reason: str | None = Field(description="Why it failed: the decoded revert reason")
    summary: str
    approvals: list[Approval] = Field(
        description="Sign and send these first, in order (missing allowances or operator "
        "approvals); empty when none is missing"
    )
    transaction: dict[str, Any] = Field(
        description="The action's unsigned EIP-1559 transaction (eth_sendTransaction fields; "
        "nonce and gas suggested, after the approvals)"
    )
    quote: list[dict[str, Any]] = Field(
        description="Marketplace actions: price, protocol fee, royalty and receiver, what the "
        "seller receives (uint256 decimal strings)"
    )
    gas_used: int = Field(description="Gas the simulation used")
    tx_hash: str | None
    block_number: int | None
    indexed: bool = Field(
        description="The chain projections (balances, NFTs) have applied the action's block"
    )
    destination: Destination | None
    params: dict[str, Any]
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None


class ActionList(BaseModel):
    actions: list[ActionPublic]


class Submitted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tx_hash: str = Field(pattern=TX_HASH, description="The hash of the action's transaction")


def _projected(session: Session, chain_id: int) -> int | None:
    return session.execute(
        text("SELECT block_number FROM chain_projection_heads WHERE chain_id = :c"),
        {"c": chain_id},
    ).scalar()


def _public(view: action_store.ActionView, projected: int | None) -> ActionPublic:
    prepared = view.prepared
    return ActionPublic(
        id=view.id,
        kind=view.kind,
        chain_id=view.chain_id,
        wallet=view.wallet,
        status=view.status,
        reason=view.reason,
        summary=prepared["summary"],
        approvals=[Approval(**a) for a in prepared["approvals"]],
        transaction=prepared["transaction"],
        quote=prepared["quote"],
        gas_used=prepared["simulation"]["gas_used"],
        tx_hash=view.tx_hash,
        block_number=view.block_number,
        indexed=view.block_number is not None
        and projected is not None
        and projected >= view.block_number,
        destination=Destination(**view.destination) if view.destination else None,
        params=view.params,
        created_at=view.created_at,
        submitted_at=view.submitted_at,
        finished_at=view.finished_at,
    )


def _chain(settings: Settings, chain_id: int) -> tuple[str, StrideContracts]:
    url = settings.indexed_chains.get(chain_id)
    if url is None:
        raise NotFound(f"chain {chain_id} is not configured (STRIDE_INDEXER_CHAINS)")
    return url, stride_contracts(settings.deployments_dir, chain_id)


@contextmanager
def _node(settings: Settings, chain_id: int, url: str) -> Iterator[Node]:
    with Node(chain_id, url, settings.indexer_rpc_timeout_s) as node:
        served = node.node_chain_id()
        if served != chain_id:
            raise NodeUnavailable(
                f"the node configured for chain {chain_id} serves chain {served}: wrong RPC URL"
            )
        yield node


def _wallet(session: Session, user_id: str, wanted: str | None) -> str:
    linked = list_wallets(session, user_id)
    if not linked:
        raise NoWallet("no wallet is linked to this user: link one first (POST /v1/wallets/verify)")
    if wanted is None:
        return linked[0].address  # the primary one comes first
    for link in linked:
        if link.address.lower() == wanted.lower():
            return link.address
    raise WalletNotLinked(f"wallet {wanted} is not linked to this user (GET /v1/wallets)")


def _refresh(
    session: Session, settings: Settings, view: action_store.ActionView
) -> action_store.ActionView:
    """Ask the chain where a submitted (or relaying) action is, and store the answer."""
    if view.status not in ("submitted", "relaying") or view.tx_hash is None:
        return view
    url, contracts = _chain(settings, view.chain_id)
    with ExitStack() as stack:

        def destination(chain_id: int) -> tuple[Node, str] | None:
            dst_url = settings.indexed_chains.get(chain_id)
            if dst_url is None:
                return None
            try:
                dst = stride_contracts(settings.deployments_dir, chain_id)
            except NotFound:
                return None
            node = stack.enter_context(Node(chain_id, dst_url, settings.indexer_rpc_timeout_s))
            return node, dst.bridge

        node = stack.enter_context(Node(view.chain_id, url, settings.indexer_rpc_timeout_s))
        followed = action_tracking.follow(
            node,
            view.tx_hash,
            settings.actions_confirmations,
            bridge=contracts.bridge if view.kind == action_params.Kind.bridge else None,
            destination=destination,
            previous=view.destination,
        )
    result = followed.outcome
    if (
        result.status == view.status
        and result.block_number == view.block_number
        and followed.destination == view.destination
    ):
        return view
    return action_store.set_status(
        session,
        view,
        status=result.status,
        now=datetime.now(UTC),
        reason=result.reason,
        block_number=result.block_number,
        block_hash=result.block_hash,
        destination=followed.destination,
    )


def _prepare_route(kind: action_params.Kind) -> Callable[..., ActionPublic]:
    model = action_params.PARAMS[kind]

    def prepare(
        chain_id: ChainId,
        body: model,  # type: ignore[valid-type]
        user_id: AppUserDep,
        engine: EngineDep,
        settings: SettingsDep,
        response: Response,
    ) -> ActionPublic:
        params: action_params.ActionParams = body
        url, contracts = _chain(settings, chain_id)
        stored = params.model_dump(mode="json", exclude={"action_id"})
        action_id = uuid.UUID(params.action_id) if params.action_id else uuid.uuid4()
        with Session(engine) as session:
            wallet = _wallet(session, user_id, params.wallet)
            try:  # a retry with the same id answers the action already prepared
                existing = action_store.get(session, user_id, action_id)
            except action_store.UnknownAction:
                existing = None
            if existing is not None:
                if existing.kind != kind or existing.params != stored:
                    raise action_store.ActionIdTaken(
                        f"action id {action_id} was already used for another request"
                    )
                response.status_code = 200
                return _public(existing, _projected(session, chain_id))
        with _node(settings, chain_id, url) as node:
            prepared = actions.prepare(kind, params, wallet, contracts, node)
        with Session(engine) as session, session.begin():
            view, created = action_store.create(
                session,
                action_id=action_id,
                user_id=user_id,
                chain_id=chain_id,
                kind=kind.value,
                wallet=wallet,
                params=stored,
                prepared=prepared.document(),
            )
            response.status_code = 201 if created else 200
            return _public(view, _projected(session, chain_id))

    prepare.__annotations__["body"] = model  # a per-kind model: resolved here, not by name
    prepare.__name__ = f"prepare_{kind.name}"
    prepare.__doc__ = (
        f"The unsigned transactions of **{kind.value}** for the signed-in user's wallet, "
        "simulated first: missing approvals, then the action."
    )
    return prepare


PREPARE_ERRORS = {
    **NOT_JSON,
    **error_responses(
        {
            403: "Token not valid, or the wallet named is not linked (wallet_not_linked)",
            404: "The chain is not configured or has no Stride contracts recorded",
            409: "No wallet linked (no_wallet_linked) or the action id was used for another "
            "request (action_id_conflict)",
            413: f"Body larger than {MAX_BODY_BYTES} bytes",
            422: "A field is invalid, or the chain would refuse the transaction "
            "(would_revert: detail is the decoded reason)",
            503: "The chain's node did not answer; nothing was prepared",
        }
    ),
}

for _kind in action_params.Kind:
    router.add_api_route(
        f"/v1/chain/{{chain_id}}/actions/{_kind.value}",
        _prepare_route(_kind),
        methods=["POST"],
        status_code=201,
        response_model=ActionPublic,
        responses=PREPARE_ERRORS,
        summary=f"Prepare {_kind.value}: what the user's wallet signs, simulated first",
    )


@router.post(
    "/v1/actions/{action_id}/submitted",
    response_model=ActionPublic,
    responses={
        **NOT_JSON,
        **error_responses(
            {
                404: "No such action of this user (action_not_found)",
                409: "Already submitted with another transaction, or the transaction is "
                "another action's",
                422: "The node does not know the transaction (tx_not_found) or it is not "
                "the one prepared (tx_mismatch: detail names the field)",
                503: "The chain's node did not answer",
            }
        ),
    },
    summary="Record the transaction the wallet sent for an action (checked on chain)",
)
def submitted(
    action_id: ActionId,
    body: Submitted,
    user_id: AppUserDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> ActionPublic:
    tx_hash = body.tx_hash.lower()
    with Session(engine) as session, session.begin():
        view = action_store.get(session, user_id, action_id, lock=True)
        if view.tx_hash != tx_hash:
            if view.tx_hash is not None:
                raise action_store.AlreadySubmitted(
                    f"action {action_id} was already submitted with transaction {view.tx_hash}"
                )
            url, _contracts = _chain(settings, view.chain_id)
            with Node(view.chain_id, url, settings.indexer_rpc_timeout_s) as node:
                tx = node.transaction(tx_hash)
            if tx is None:
                raise action_tracking.TxUnknown(
                    f"chain {view.chain_id}'s node does not know transaction {tx_hash}: send "
                    "it first, then post its hash"
                )
            problem = action_tracking.tx_mismatch(view.prepared["transaction"], tx)
            if problem:
                raise action_tracking.TxMismatch(
                    f"transaction {tx_hash} is not the one action {action_id} prepared: {problem}"
                )
            view = action_store.mark_submitted(session, view, tx_hash, datetime.now(UTC))
        view = _refresh(session, settings, view)
        return _public(view, _projected(session, view.chain_id))


@router.get(
    "/v1/actions/{action_id}",
    response_model=ActionPublic,
    responses={
        **error_responses(
            {
                404: "No such action of this user (action_not_found)",
                503: "The chain's node did not answer",
            }
        ),
    },
    summary="An action and its status on chain (asked of the chain when still open)",
)
def get_action(
    action_id: ActionId, user_id: AppUserDep, engine: EngineDep, settings: SettingsDep
) -> ActionPublic:
    with Session(engine) as session, session.begin():
        view = action_store.get(session, user_id, action_id, lock=True)
        view = _refresh(session, settings, view)
        return _public(view, _projected(session, view.chain_id))


@router.get(
    "/v1/actions",
    response_model=ActionList,
    summary="The signed-in user's latest actions, newest first (statuses as last seen)",
)
def list_actions(
    user_id: AppUserDep,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ActionList:
    with Session(engine) as session:
        views = action_store.list_for_user(session, user_id, limit)
        heads = {v.chain_id: _projected(session, v.chain_id) for v in views}
        return ActionList(actions=[_public(v, heads[v.chain_id]) for v in views])
