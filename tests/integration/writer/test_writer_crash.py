"""``kill -9`` of the writer process at random points of a batch of 1,000 rewards, three
times, then a clean run: every reward is confirmed exactly once and the chain's balances
equal the database's ledger (no double mint, none lost).

Interval mining (a block a second, automine off) keeps transactions in flight between
broadcast and receipt, so the kills land in every phase: signed but not broadcast,
broadcast but not mined, mined but not yet recorded."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.stack import free_port
from contracts.deploy import Deployment
from core.platform.config import Settings
from tests.integration.writer.conftest import (
    CHAIN,
    Game,
    Node,
    ledger,
    on_chain,
    seed_game,
    statuses,
)


def _progress(engine: Engine, game: Game) -> int:
    """Commands of the game carried by a recorded transaction or confirmed."""
    counts = statuses(engine, game)
    return counts.get("submitted", 0) + counts.get("confirmed", 0)


def _start(
    settings: Settings,
    node: Node,
    deployment: Deployment,
    key: LocalAccount,
    log: Path,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STRIDE_WRITER_CHAIN_ID": str(CHAIN),
        "STRIDE_WRITER_RPC_URL": node.url,
        "STRIDE_WRITER_PRIVATE_KEY": key.key.hex(),
        "STRIDE_WRITER_DISTRIBUTOR_ADDRESS": deployment.address("StrideRewardsDistributor"),
        "STRIDE_WRITER_BATCH_SIZE": "50",
        "STRIDE_WRITER_MAX_INFLIGHT_TXS": "8",
        "STRIDE_WRITER_POLL_S": "0.02",
        "STRIDE_WRITER_METRICS_PORT": str(free_port()),
        "STRIDE_STATE_DIR": str(settings.state_dir),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "chain_writer"], env=env, stdout=out, stderr=out
        )


def test_kill_9_three_times_during_a_batch_of_1000(
    node: Node,
    deployment: Deployment,
    writer_key: LocalAccount,
    db_engine: Engine,
    kafka: Settings,
    tmp_path: Path,
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    game = seed_game(db_engine, players=37, rewards=1000)
    node.rpc("evm_setAutomine", [False])
    node.rpc("evm_setIntervalMining", [1])
    log = tmp_path / "writer.log"
    thresholds = sorted(rng.sample(range(20, 950), 3))
    try:
        for threshold in thresholds:
            process = _start(kafka, node, deployment, writer_key, log)
            deadline = time.monotonic() + 60
            # Readiness polling of the database: kill once the writer got that far.
            while _progress(db_engine, game) < threshold and process.poll() is None:
                if time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(
                        f"no progress to {threshold} (seed {seed}): {log.read_text()[-2000:]}"
                    )
                time.sleep(0.01)
            assert process.poll() is None, f"writer exited: {log.read_text()[-2000:]}"
            time.sleep(rng.uniform(0, 1.0))  # anywhere inside the next batch's phases
            process.send_signal(signal.SIGKILL)
            process.wait()
        process = _start(kafka, node, deployment, writer_key, log)
        deadline = time.monotonic() + 60
        while statuses(db_engine, game) != {"confirmed": 1000}:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"seed {seed}: {statuses(db_engine, game)}; {log.read_text()[-3000:]}")
            time.sleep(0.05)
        # Stop it once it is up (its first pass wrote the heartbeat), so that SIGTERM
        # reaches its handler and not the interpreter still importing.
        beat = kafka.state_dir / "run" / "heartbeats" / f"writer.{CHAIN}.json"
        while not (beat.exists() and f'"pid": {process.pid},' in beat.read_text()):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(
                    f"seed {seed}: the writer never became ready; {log.read_text()[-3000:]}"
                )
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        node.rpc("evm_setIntervalMining", [0])
        node.rpc("evm_setAutomine", [True])
    expected = ledger(db_engine, game)
    assert sum(expected.values()) == 1000 * 15 * 10**17
    assert on_chain(node, deployment, game.wallets.values()) == expected, f"seed {seed}"
    distributor = deployment.contract(node.w3, "StrideRewardsDistributor")
    minted = distributor.events.RewardMinted().get_logs(from_block=0)
    ours = {e.args.commandId for e in minted} & {c.bytes.rjust(32, b"\0") for c in game.commands}
    assert len(ours) == 1000
    assert len([e for e in minted if e.args.commandId in ours]) == 1000  # none twice
    with db_engine.connect() as conn:
        published = conn.execute(
            text(
                "SELECT count(*) FROM reward_executions e JOIN reward_commands c USING "
                "(command_id) WHERE c.game_id = :g AND e.outcome_published_at IS NOT NULL"
            ),
            {"g": game.game_id},
        ).scalar()
    assert published == 1000  # every outcome reached rewards.outcomes.v1
