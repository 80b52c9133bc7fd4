"""Purchases paid in the token: the burn needs the holder's EIP-2612 permit.

A purchase event issues a ``burn`` command (``core.rewards.commands``); the chain writer
puts it in ``needs_authorization``. The app user who owns the player asks for the permit to
sign (:func:`permit_request`: the token's EIP-712 domain, the holder's current permit nonce
read from the token, a deadline, spender = the distributor), signs it with the wallet and
posts the signature (:func:`authorize`): it is checked here (recovers to the holder, for the
exact amount, not expired, nonce current) and stored in ``burn_authorizations``; the writer
then submits permit + burn through ``burnWithPermit``. :func:`purchase_status` is what the
app and the game read; the outcome is also published to rewards.outcomes.v1.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from sqlalchemy import Engine, text

from core.chain.rpc import Rpc, RpcError
from core.platform.config import REPO_ROOT
from core.platform.errors import Conflict, Invalid, NotFound, Unavailable
from core.rewards.batching import to_wei

DEPLOYMENTS_DIR = REPO_ROOT / "contracts" / "deployments"  # read as data, like the ABIs
AUTHORIZABLE = ("pending", "needs_authorization")
PERMIT_TYPES = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass(frozen=True)
class ChainAddresses:
    chain_id: int
    token: str
    distributor: str


# burn_authorizations.deadline is a BIGINT: a later deadline could not be stored.
MAX_DEADLINE = 2**63 - 1


def chain_addresses(
    chain_id: int, distributor: str | None = None, directory: Path | None = None
) -> ChainAddresses:
    """The token and distributor of ``chain_id`` from its deployment file (in ``directory``,
    default the repository's ``contracts/deployments``)."""
    path = (directory or DEPLOYMENTS_DIR) / f"{chain_id}.json"
    try:
        contracts = json.loads(path.read_text())["contracts"]
        token = contracts["StrideToken"]["address"]
        distributor = distributor or contracts["StrideRewardsDistributor"]["address"]
    except (OSError, KeyError, ValueError) as exc:
        raise Unavailable(f"the contracts of chain {chain_id} are not deployed yet") from exc
    return ChainAddresses(chain_id, to_checksum_address(token), to_checksum_address(distributor))


@dataclass(frozen=True)
class Purchase:
    command_id: uuid.UUID
    game_id: str
    player_id: str
    user_id: str | None
    status: str
    amount: Any
    token: str
    reason: str | None
    wallet: str | None
    tx_hash: str | None
    block_number: int | None
    source_event_id: uuid.UUID


_PURCHASE = text(
    """
    SELECT c.command_id, c.game_id, c.player_id, l.user_id, c.status, c.amount, c.token,
        e.reason, e.recipient AS wallet, t.mined_tx_hash AS tx_hash,
        t.mined_block AS block_number, c.source_event_id
    FROM reward_commands c
    LEFT JOIN player_links l ON l.game_id = c.game_id AND l.player_id = c.player_id
    LEFT JOIN reward_executions e ON e.command_id = c.command_id
    LEFT JOIN chain_txs t ON t.id = e.chain_tx_id
    WHERE c.command_id = :id AND c.action = 'burn'
    """
)


def purchase(
    engine: Engine, command_id: uuid.UUID, *, user_id: str | None, game_id: str | None
) -> Purchase:
    """The burn command ``command_id`` as its owner (an app user) or its game sees it; the
    same 404 for a purchase that does not exist and one that is someone else's."""
    with engine.connect() as conn:
        row = conn.execute(_PURCHASE, {"id": command_id}).mappings().first()
    if row is None or (user_id is not None and row["user_id"] != user_id):
        raise NotFound(f"no purchase {command_id} of yours")
    if game_id is not None and row["game_id"] != game_id:
        raise NotFound(f"no purchase {command_id} of your game")
    return Purchase(**row)


def _user_wallets(engine: Engine, user_id: str) -> tuple[str | None, set[str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT address, is_primary FROM user_wallets WHERE user_id = :u"),
            {"u": user_id},
        ).all()
    primary = next((r[0] for r in rows if r[1]), None)
    return primary, {r[0] for r in rows}


def _call_uint(rpc: Rpc, to: str, signature: str, *args: tuple[str, Any]) -> int:
    data = keccak(text=signature)[:4] + abi_encode([t for t, _ in args], [v for _, v in args])
    answer = rpc.eth_call(to, "0x" + data.hex())
    return int(abi_decode(["uint256"], bytes.fromhex(answer.removeprefix("0x")))[0])


def _token_name(rpc: Rpc, token: str) -> str:
    answer = rpc.eth_call(token, "0x" + keccak(text="name()")[:4].hex())
    return str(abi_decode(["string"], bytes.fromhex(answer.removeprefix("0x")))[0])


def _typed_data(
    addresses: ChainAddresses, name: str, owner: str, value: int, nonce: int, deadline: int
) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **PERMIT_TYPES,
        },
        "primaryType": "Permit",
        "domain": {
            "name": name,
            "version": "1",
            "chainId": addresses.chain_id,
            "verifyingContract": addresses.token,
        },
        "message": {
            "owner": owner,
            "spender": addresses.distributor,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def permit_request(
    engine: Engine,
    rpc: Rpc,
    addresses: ChainAddresses,
    user_id: str,
    command_id: uuid.UUID,
    *,
    ttl_s: int,
    now: datetime,
) -> dict[str, Any]:
    """The EIP-712 typed data the user's primary wallet must sign for this purchase, checked
    first against the chain (enough balance)."""
    bought = purchase(engine, command_id, user_id=user_id, game_id=None)
    if bought.status not in AUTHORIZABLE:
        raise Conflict(f"purchase {command_id} is {bought.status}: nothing to authorize")
    owner, _ = _user_wallets(engine, user_id)
    if owner is None:
        raise Conflict("link a wallet first (POST /v1/wallets/verify): the burn is taken from it")
    value = to_wei(bought.amount)
    try:
        balance = _call_uint(rpc, addresses.token, "balanceOf(address)", ("address", owner))
        nonce = _call_uint(rpc, addresses.token, "nonces(address)", ("address", owner))
        name = _token_name(rpc, addresses.token)
    except RpcError as exc:
        raise Unavailable(f"the chain node did not answer: {exc}") from exc
    if balance < value:
        raise Conflict(
            f"insufficient balance: wallet {owner} holds {balance} wei of the token, the "
            f"purchase costs {value}"
        )
    deadline = int(now.timestamp()) + ttl_s
    return _typed_data(addresses, name, owner, value, nonce, deadline)


def authorize(
    engine: Engine,
    rpc: Rpc,
    addresses: ChainAddresses,
    user_id: str,
    command_id: uuid.UUID,
    *,
    owner: str,
    nonce: int,
    deadline: int,
    signature: str,
    now: datetime,
) -> Purchase:
    """Check and store the holder's signed permit; the writer burns on its next pass."""
    bought = purchase(engine, command_id, user_id=user_id, game_id=None)
    if bought.status not in AUTHORIZABLE:
        raise Conflict(f"purchase {command_id} is {bought.status}: nothing to authorize")
    _, wallets = _user_wallets(engine, user_id)
    owner = to_checksum_address(owner)
    if owner not in wallets:
        raise Invalid(f"owner: {owner} is not one of your wallets")
    if deadline <= int(now.timestamp()):
        raise Invalid("deadline: the permit has expired; ask for a new one (…/intent)")
    if deadline > MAX_DEADLINE:
        raise Invalid(
            f"deadline: at most {MAX_DEADLINE} (a UNIX time); sign the deadline the intent gave"
        )
    value = to_wei(bought.amount)
    try:
        name = _token_name(rpc, addresses.token)
        current = _call_uint(rpc, addresses.token, "nonces(address)", ("address", owner))
        balance = _call_uint(rpc, addresses.token, "balanceOf(address)", ("address", owner))
    except RpcError as exc:
        raise Unavailable(f"the chain node did not answer: {exc}") from exc
    if nonce != current:
        raise Invalid(f"nonce: the token's permit nonce of {owner} is {current}, not {nonce}")
    # The platform's sender pays the gas of the burn: one bound to revert is refused here.
    if balance < value:
        raise Invalid(
            f"owner: wallet {owner} holds {balance} wei of the token, the purchase costs "
            f"{value} wei; pay from a wallet that holds enough"
        )
    with engine.connect() as conn:
        other = conn.execute(
            text(
                """
                SELECT a.command_id FROM burn_authorizations a
                JOIN reward_commands c ON c.command_id = a.command_id
                WHERE a.chain_id = :chain AND a.owner = :owner AND a.permit_nonce = :nonce
                    AND a.command_id <> :id AND c.status <> 'failed'
                LIMIT 1
                """
            ),
            {"chain": addresses.chain_id, "owner": owner, "nonce": nonce, "id": command_id},
        ).scalar()
    if other is not None:
        raise Conflict(
            f"the permit nonce {nonce} of {owner} already authorizes purchase {other}: a"
            " permit pays once; authorize this one after that burn, with a new intent"
        )
    typed = _typed_data(addresses, name, owner, value, nonce, deadline)
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        signable = encode_typed_data(full_message=typed)
        signer = Account.recover_message(signable, signature=raw)
    except Exception as exc:
        raise Invalid("signature: not a valid 65-byte ECDSA signature") from exc
    if signer != owner:
        raise Invalid(
            f"signature: signed by {signer}, not by the holder {owner} (or for other values)"
        )
    v, r, s = raw[64], raw[:32], raw[32:64]
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO burn_authorizations (command_id, chain_id, owner, value_wei,
                    permit_nonce, deadline, v, r, s)
                VALUES (:id, :chain, :owner, :value, :nonce, :deadline, :v, :r, :s)
                ON CONFLICT (command_id) DO UPDATE SET owner = EXCLUDED.owner,
                    value_wei = EXCLUDED.value_wei, permit_nonce = EXCLUDED.permit_nonce,
                    deadline = EXCLUDED.deadline, v = EXCLUDED.v, r = EXCLUDED.r,
                    s = EXCLUDED.s, created_at = now()
                """
            ),
            {
                "id": command_id,
                "chain": addresses.chain_id,
                "owner": owner,
                "value": value,
                "nonce": nonce,
                "deadline": deadline,
                "v": v if v >= 27 else v + 27,
                "r": "0x" + r.hex(),
                "s": "0x" + s.hex(),
            },
        )
        conn.execute(
            text(
                "UPDATE reward_commands SET status = 'pending', updated_at = clock_timestamp() "
                "WHERE command_id = :id AND status = 'needs_authorization'"
            ),
            {"id": command_id},
        )
    return purchase(engine, command_id, user_id=user_id, game_id=None)
