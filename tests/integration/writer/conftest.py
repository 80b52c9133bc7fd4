"""Fixtures of the chain writer tests: a real anvil of its own (chain 31400), the Stride
contracts deployed by the real deploy code with a fresh writer key holding SENDER_ROLE,
players linked to app users with primary wallets in the session's real PostgreSQL, and
reward commands inserted the way the scoring agent inserts them."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import text
from sqlalchemy.engine import Engine
from web3 import Web3

from chain_writer.writer import ChainWriter, WriterConfig
from cli.stack import free_port
from contracts.anvil import running_anvil
from contracts.deploy import DeployConfig, Deployment, deploy
from contracts.node import TxSender
from core.chain.rpc import Rpc
from core.chain.signer import LocalKeySigner
from core.platform.config import Settings
from core.platform.db import json_rows

CHAIN = 31400
E18 = 10**18


@dataclass
class Node:
    chain_id: int
    url: str
    w3: Web3

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        answer = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        assert "error" not in answer, answer
        return answer["result"]


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    with running_anvil(free_port(), CHAIN) as url:
        yield Node(CHAIN, url, Web3(Web3.HTTPProvider(url)))


@pytest.fixture(scope="module")
def writer_key() -> LocalAccount:
    return Account.create()


@pytest.fixture(scope="module")
def deployer() -> LocalAccount:
    return Account.create()


@pytest.fixture(scope="module")
def deployments_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deployments")


@pytest.fixture(scope="module")
def deployment(
    node: Node,
    writer_key: LocalAccount,
    deployer: LocalAccount,
    deployments_dir: Path,
) -> Deployment:
    for account in (writer_key, deployer):
        node.rpc("anvil_setBalance", [account.address, hex(10_000 * E18)])
    return deploy(
        TxSender.from_key(node.w3, deployer.key.hex()),
        DeployConfig(rewards_sender=writer_key.address),
        expected_chain_id=CHAIN,
        directory=deployments_dir,
    )


@pytest.fixture(autouse=True)
def _automine(node: Node) -> Iterator[None]:
    yield
    node.rpc("evm_setAutomine", [True])


@pytest.fixture
def writer_settings(kafka: Settings, db_engine: Engine) -> Settings:
    return kafka.model_copy(
        update={"writer_batch_size": 100, "writer_max_inflight_txs": 8, "writer_poll_s": 0.05}
    )


MakeWriter = Callable[..., ChainWriter]


@pytest.fixture
def make_writer(
    node: Node,
    deployment: Deployment,
    writer_key: LocalAccount,
    db_engine: Engine,
    writer_settings: Settings,
) -> Iterator[MakeWriter]:
    rpcs: list[Rpc] = []

    def make(**overrides: Any) -> ChainWriter:
        settings = writer_settings.model_copy(update=overrides)
        rpc = Rpc(node.url)
        rpcs.append(rpc)
        config = WriterConfig.from_settings(
            settings, CHAIN, deployment.address("StrideRewardsDistributor")
        )
        return ChainWriter(db_engine, rpc, LocalKeySigner(writer_key.key.hex()), config)

    yield make
    for rpc in rpcs:
        rpc.close()


@dataclass
class Game:
    game_id: str
    wallets: dict[str, str]  # player -> wallet (linked players only)
    commands: list[uuid.UUID]


def seed_game(
    engine: Engine,
    players: int,
    rewards: int,
    *,
    linked: int | None = None,
    amount: Decimal = Decimal("1.5"),
    action: str = "mint",
) -> Game:
    """A game with ``players`` players (the first ``linked`` linked to users with a primary
    wallet) and ``rewards`` pending commands spread over them."""
    game_id = "w" + secrets.token_hex(6)
    linked = players if linked is None else linked
    wallets: dict[str, str] = {}
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO games (game_id, name, api_key_hash, api_key_prefix) "
                "VALUES (:g, :g, :h, 'k')"
            ),
            {"g": game_id, "h": secrets.token_hex(32)},
        )
        for i in range(players):
            player = f"p{i}"
            if i < linked:
                wallets[player] = link_player(conn, game_id, player)
        rows = []
        commands = []
        for n in range(rewards):
            cid = uuid.uuid4()
            commands.append(cid)
            rows.append(
                {
                    "command_id": str(cid),
                    "source_event_id": str(uuid.uuid4()),
                    "action": action,
                    "game_id": game_id,
                    "player_id": f"p{n % players}",
                    "token": "STRIDE",
                    "amount": str(amount),
                    "reason": "match_won",
                    "issued_at": now.isoformat(),
                }
            )
        conn.execute(
            text(
                """
                INSERT INTO reward_commands (command_id, source_event_id, action, status,
                    game_id, player_id, token, amount, reason, issued_at)
                SELECT c.command_id, c.source_event_id, c.action, 'pending', c.game_id,
                    c.player_id, c.token, c.amount, c.reason, c.issued_at
                FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS c(command_id uuid,
                    source_event_id uuid, action text, game_id text, player_id text,
                    token text, amount numeric, reason text, issued_at timestamptz)
                """
            ),
            json_rows(rows),
        )
    return Game(game_id, wallets, commands)


def link_player(conn: Any, game_id: str, player: str, wallet: str | None = None) -> str:
    user = f"u-{game_id}-{player}"
    wallet = wallet or Account.create().address
    conn.execute(
        text(
            "INSERT INTO app_users (user_id, token_hash, token_prefix) VALUES (:u, :h, 't') "
            "ON CONFLICT DO NOTHING"
        ),
        {"u": user, "h": secrets.token_hex(32)},
    )
    conn.execute(
        text(
            "INSERT INTO user_wallets (address, user_id, is_primary, kind, chain_id) "
            "VALUES (:a, :u, true, 'eoa', :c)"
        ),
        {"a": wallet, "u": user, "c": CHAIN},
    )
    conn.execute(
        text("INSERT INTO player_links (game_id, player_id, user_id) VALUES (:g, :p, :u)"),
        {"g": game_id, "p": player, "u": user},
    )
    return wallet


def statuses(engine: Engine, game: Game) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            r[0]: r[1]
            for r in conn.execute(
                text("SELECT status, count(*) FROM reward_commands WHERE game_id = :g GROUP BY 1"),
                {"g": game.game_id},
            )
        }


def ledger(engine: Engine, game: Game, status: str = "confirmed") -> dict[str, int]:
    """Wei per wallet of the game's commands in ``status`` (the database's view)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT e.recipient, sum(e.amount_wei) FROM reward_commands c
                JOIN reward_executions e USING (command_id)
                WHERE c.game_id = :g AND c.status = :s GROUP BY 1
                """
            ),
            {"g": game.game_id, "s": status},
        )
        return {r[0]: int(r[1]) for r in rows}


def on_chain(node: Node, deployment: Deployment, wallets: Any) -> dict[str, int]:
    token = deployment.contract(node.w3, "StrideToken")
    balances = {w: token.functions.balanceOf(w).call() for w in wallets}
    return {w: b for w, b in balances.items() if b}


def run_until(
    writer: ChainWriter,
    done: Callable[[], bool],
    *,
    timeout_s: float = 30,
    between: Callable[[], None] = lambda: None,
) -> int:
    """Passes of the writer until ``done()``; returns how many it took."""
    deadline = time.monotonic() + timeout_s
    passes = 0
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"not done after {passes} passes")
        writer.step()
        between()
        passes += 1
    return passes
