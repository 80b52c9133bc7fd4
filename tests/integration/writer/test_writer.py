"""The chain writer against real anvil and PostgreSQL: batched mints confirmed once,
awaiting_wallet minted after a link, a stuck transaction replaced, nonce drift repaired,
a transaction sent again after a crash skipped by the contract."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from contracts.deploy import Deployment
from core.chain.rpc import Rpc
from tests.integration.writer.conftest import (
    CHAIN,
    MakeWriter,
    Node,
    ledger,
    link_player,
    on_chain,
    run_until,
    seed_game,
    statuses,
)


def _txs(engine: Engine, game_commands: list) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT * FROM chain_txs WHERE command_ids && CAST(:ids AS uuid[]) ORDER BY id"
                ),
                {"ids": [str(c) for c in game_commands]},
            ).mappings()
        ]


def test_batched_mints_confirmed_once_and_match_the_ledger(
    node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    game = seed_game(db_engine, players=20, rewards=1000)
    writer = make_writer()
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 1000})
    expected = ledger(db_engine, game)
    assert sum(expected.values()) == 1000 * 15 * 10**17
    assert on_chain(node, deployment, game.wallets.values()) == expected
    txs = _txs(db_engine, game.commands)
    assert all(t["status"] == "confirmed" and t["kind"] == "mint_batch" for t in txs)
    assert len(txs) == 10  # batches of 100
    assert sorted(t["nonce"] for t in txs) == list(range(txs[0]["nonce"], txs[0]["nonce"] + 10))


def test_awaiting_wallet_is_minted_after_the_wallet_is_linked(
    node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    game = seed_game(db_engine, players=2, rewards=6, linked=1)
    writer = make_writer()
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 3, "awaiting_wallet": 3})
    with db_engine.connect() as conn:
        reasons = (
            conn.execute(
                text(
                    "SELECT DISTINCT e.reason FROM reward_executions e JOIN reward_commands c "
                    "USING (command_id) WHERE c.game_id = :g AND c.status = 'awaiting_wallet'"
                ),
                {"g": game.game_id},
            )
            .scalars()
            .all()
        )
    assert len(reasons) == 1 and "'p1'" in reasons[0] and "primary wallet" in reasons[0]
    with db_engine.begin() as conn:
        wallet = link_player(conn, game.game_id, "p1")
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 6})
    assert on_chain(node, deployment, [wallet]) == {wallet: 3 * 15 * 10**17}


def test_resent_transaction_after_a_crash_pays_nothing_twice(
    node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    """The writer's record says a batch is queued again although it was mined (a drop
    decided wrongly, a restore from backup): the contract skips what it paid."""
    game = seed_game(db_engine, players=3, rewards=30)
    writer = make_writer()
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 30})
    with db_engine.begin() as conn:
        conn.execute(
            text("UPDATE reward_commands SET status = 'queued' WHERE game_id = :g"),
            {"g": game.game_id},
        )
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 30})
    assert on_chain(node, deployment, game.wallets.values()) == ledger(db_engine, game)
    assert len(_txs(db_engine, game.commands)) == 2  # the resend was mined, and skipped all


def test_stuck_transaction_is_replaced_with_higher_fees(
    node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    game = seed_game(db_engine, players=2, rewards=10)
    writer = make_writer(writer_bump_after_blocks=2)
    node.rpc("evm_setAutomine", [False])
    writer.step()  # signed and broadcast at the current (low) base fee
    assert statuses(db_engine, game) == {"submitted": 10}
    # The base fee jumps far above what the transaction offers: it cannot be mined.
    node.rpc("anvil_setNextBlockBaseFeePerGas", [hex(500 * 10**9)])
    node.rpc("evm_mine")
    run_until(
        writer,
        lambda: statuses(db_engine, game) == {"confirmed": 10},
        between=lambda: node.rpc("evm_mine"),
    )
    (tx,) = _txs(db_engine, game.commands)
    assert tx["bumps"] >= 1 and len(tx["tx_hashes"]) == tx["bumps"] + 1
    assert tx["mined_tx_hash"] == tx["tx_hash"] != tx["tx_hashes"][0]
    assert int(tx["max_fee_per_gas"]) >= 500 * 10**9
    assert on_chain(node, deployment, game.wallets.values()) == ledger(db_engine, game)


def test_nonce_used_outside_the_writer_is_repaired(
    node: Node,
    deployment: Deployment,
    db_engine: Engine,
    make_writer: MakeWriter,
    writer_key,
) -> None:
    writer = make_writer()
    warm = seed_game(db_engine, players=1, rewards=1)
    run_until(writer, lambda: statuses(db_engine, warm) == {"confirmed": 1})
    # Someone sends two transactions with the writer's key: its local nonce is now stale.
    rpc = Rpc(node.url)
    try:
        nonce = int(rpc.call("eth_getTransactionCount", [writer_key.address, "pending"]), 16)
    finally:
        rpc.close()
    base_fee = node.w3.eth.get_block("latest")["baseFeePerGas"]
    for offset in range(2):
        signed = writer_key.sign_transaction(
            {
                "type": 2,
                "chainId": CHAIN,
                "nonce": nonce + offset,
                "to": writer_key.address,
                "value": 0,
                "gas": 21_000,
                "maxFeePerGas": 2 * base_fee + 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        node.rpc("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])
    game = seed_game(db_engine, players=2, rewards=20)
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 20})
    assert on_chain(node, deployment, game.wallets.values()) == ledger(db_engine, game)
    with db_engine.connect() as conn:
        sender = (
            conn.execute(
                text("SELECT * FROM chain_senders WHERE chain_id = :c AND sender = :s"),
                {"c": CHAIN, "s": writer_key.address},
            )
            .mappings()
            .one()
        )
    assert sender["next_nonce"] == nonce + 3
    assert "drifted up" in sender["last_repair"]
    statuses_of_txs = {t["status"] for t in _txs(db_engine, game.commands)}
    assert statuses_of_txs <= {"confirmed", "dropped"} and "confirmed" in statuses_of_txs


def test_node_that_lost_our_transactions_gets_them_again(
    node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    game = seed_game(db_engine, players=2, rewards=250)
    writer = make_writer()
    node.rpc("evm_setAutomine", [False])
    writer.step()
    assert statuses(db_engine, game) == {"submitted": 250}
    node.rpc("anvil_dropAllTransactions")  # a node restart without its mempool
    node.rpc("evm_setAutomine", [True])
    writer._needs_reconcile = True  # what the periodic reconciliation would do
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 250})
    assert on_chain(node, deployment, game.wallets.values()) == ledger(db_engine, game)


def test_linking_a_wallet_releases_awaiting_rewards_in_its_transaction(
    node: Node, deployment: Deployment, db_engine: Engine, make_writer: MakeWriter
) -> None:
    """The wallet link path (core.identity.wallets.link_wallet) is the hook: the rewards
    are pending again as soon as the link commits, before any writer pass."""
    from datetime import UTC, datetime

    from eth_account import Account
    from sqlalchemy.orm import Session

    from core.identity.wallets import link_wallet

    game = seed_game(db_engine, players=1, rewards=2, linked=0)
    writer = make_writer()
    run_until(writer, lambda: statuses(db_engine, game) == {"awaiting_wallet": 2})
    user = f"u-{game.game_id}"
    with db_engine.begin() as conn:
        conn.execute(
            text("INSERT INTO app_users (user_id, token_hash, token_prefix) VALUES (:u, :h, 't')"),
            {"u": user, "h": user.ljust(64, "0")[:64]},
        )
        conn.execute(
            text("INSERT INTO player_links (game_id, player_id, user_id) VALUES (:g, 'p0', :u)"),
            {"g": game.game_id, "u": user},
        )
    wallet = Account.create().address
    with Session(db_engine) as session, session.begin():
        link_wallet(session, user, wallet, kind="eoa", chain_id=CHAIN, now=datetime.now(UTC))
    assert statuses(db_engine, game) == {"pending": 2}
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 2})
    assert on_chain(node, deployment, [wallet]) == {wallet: 2 * 15 * 10**17}


def test_reverted_batch_fails_with_the_decoded_reason_and_is_retried(
    node: Node,
    deployment: Deployment,
    db_engine: Engine,
    make_writer: MakeWriter,
    deployer,
) -> None:
    """The token is paused: the batch reverts, its commands are failed with the contract's
    error name; `stride rewards retry` after the unpause mints them, and `stride chain
    status` shows the failure meanwhile."""
    import json

    from typer.testing import CliRunner

    from cli.main import app
    from contracts.node import TxSender

    runner = CliRunner()
    token = deployment.contract(node.w3, "StrideToken")
    admin = TxSender.from_key(node.w3, deployer.key.hex())
    game = seed_game(db_engine, players=2, rewards=4)
    admin.call(token.functions.pause())
    try:
        writer = make_writer()
        run_until(writer, lambda: statuses(db_engine, game) == {"failed": 4})
        listed = runner.invoke(app, ["rewards", "list", "--game", game.game_id, "--json"])
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.output)
        assert {r["status"] for r in rows} == {"failed"}
        assert all(r["reason"] == "EnforcedPause()" for r in rows), rows
        status = runner.invoke(app, ["chain", "status", "--json"])
        assert status.exit_code == 1  # a failed command is a problem to act on
        failures = json.loads(status.output)["writer"]["failures"]
        assert any(f["reason"] == "EnforcedPause()" for f in failures)
    finally:
        admin.call(token.functions.unpause())
    retried = runner.invoke(app, ["rewards", "retry", *[str(c) for c in game.commands]])
    assert retried.exit_code == 0, retried.output
    assert "4 command(s) back to pending" in retried.output
    run_until(writer, lambda: statuses(db_engine, game) == {"confirmed": 4})
    assert on_chain(node, deployment, game.wallets.values()) == ledger(db_engine, game)
    again = runner.invoke(app, ["rewards", "retry", str(game.commands[0])])
    assert again.exit_code == 1 and "not retried" in again.output  # confirmed: never again


def test_a_reorg_that_drops_a_mined_tx_sends_it_again_once(
    node: Node,
    deployment: Deployment,
    db_engine: Engine,
    make_writer: MakeWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mined, not yet confirmed (3 confirmations), then its block is reorganized away
    (``evm_revert``: the transaction is gone from the chain and the mempool): the writer sees
    the receipt vanish, broadcasts the same bytes again, and confirms it once."""
    writer = make_writer(writer_confirmations=3)
    snapshot = node.rpc("evm_snapshot")
    game = seed_game(db_engine, players=2, rewards=5)

    def mined() -> bool:
        txs = _txs(db_engine, game.commands)
        return bool(txs) and txs[0]["status"] == "mined"

    run_until(writer, mined)
    (first,) = _txs(db_engine, game.commands)
    assert statuses(db_engine, game) == {"submitted": 5}
    assert node.rpc("evm_revert", [snapshot])
    assert node.rpc("eth_getTransactionReceipt", [first["tx_hash"]]) is None
    run_until(
        writer,
        lambda: statuses(db_engine, game) == {"confirmed": 5},
        between=lambda: node.rpc("evm_mine"),
    )
    (again,) = _txs(db_engine, game.commands)
    assert again["id"] == first["id"] and again["mined_tx_hash"] == first["tx_hash"]
    assert any("left the chain (reorg)" in r.getMessage() for r in caplog.records)
    assert on_chain(node, deployment, game.wallets.values()) == ledger(db_engine, game)
