"""Chain writer benchmark: won-match rewards per second confirmed on anvil with batching,
latency at a steady rate, against anvil's own raw rate for signed transfers in the same run.

Starts a private PostgreSQL and Kafka on free loopback ports and an anvil (automine), deploys
the Stride contracts with a fresh writer key, links ``--players`` players to wallets, then:

1. raw: ``--raw`` signed ETH transfers (locally signed, one ``eth_sendRawTransaction``
   each, nonces managed here) until the last receipt: anvil's transactions/s;
2. backlog: ``--rewards`` pending mint commands for won matches, inserted as the scoring
   agent inserts them (one statement), then the writer (in-process, one sender) until every
   one is confirmed: rewards/s, transactions, gas per reward;
3. steady: ``--rate`` rewards/s inserted every 100 ms for ``--seconds``; per reward, from
   its insertion (``issued_at``) to its ``confirmed`` status (``updated_at``): p50/p99.

The scoring agent's own step (event → command) is measured by ``bench/events_e2e.py``; it
is not in these figures. Prints them and writes ``bench/results/chain_writer.json``.
Run: ``.venv/bin/python -m bench.chain_writer [--rewards 20000]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "chain_writer.json"
CHAIN_ID = 31401
E18 = 10**18


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chain_writer", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rewards", type=int, default=20_000, help="backlog of mint commands")
    parser.add_argument("--players", type=int, default=500)
    parser.add_argument("--raw", type=int, default=2_000, help="signed transfers of the raw run")
    parser.add_argument("--rate", type=float, default=1_000.0, help="rewards/s, steady run")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from cli.services import SERVICES, isolated_stack_env

    state, env = isolated_stack_env("stride-bench-writer-")
    os.environ.update(env)
    from core.platform.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    from cli.stack import Stack, free_port

    stack = Stack(settings, SERVICES)
    try:
        stack.up(["postgres", "kafka"], report=print)
        from core.platform.migrate import upgrade_to_head

        upgrade_to_head(settings)
        run(args, settings, free_port())
    finally:
        stack.down(report=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)


_INSERT = """
    INSERT INTO reward_commands (command_id, source_event_id, action, status, game_id,
        player_id, token, amount, reason, issued_at, updated_at)
    SELECT c.command_id, c.source_event_id, 'mint', 'pending', :game, c.player_id,
        'STRIDE', 10, 'match_won', clock_timestamp(), clock_timestamp()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS c(command_id uuid, source_event_id uuid, player_id text)
"""


def run(args: argparse.Namespace, settings: Any, anvil_port: int) -> None:
    from eth_account import Account
    from sqlalchemy import text
    from web3 import Web3

    from chain_writer.writer import ChainWriter, WriterConfig
    from contracts.anvil import running_anvil
    from contracts.deploy import DeployConfig, deploy
    from contracts.node import TxSender
    from core.chain.rpc import Rpc
    from core.chain.signer import LocalKeySigner
    from core.platform.db import engine_for, json_rows

    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": [round(x, 1) for x in os.getloadavg()],
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    engine = engine_for(settings.db_url, pool_size=4)
    game = "bench-writer"
    with running_anvil(anvil_port, CHAIN_ID) as url:
        w3 = Web3(Web3.HTTPProvider(url))
        writer_key, deployer, raw_key = Account.create(), Account.create(), Account.create()
        for account in (writer_key, deployer, raw_key):
            w3.provider.make_request("anvil_setBalance", [account.address, hex(10**6 * E18)])  # type: ignore[arg-type]
        deployment = deploy(
            TxSender.from_key(w3, deployer.key.hex()),
            DeployConfig(rewards_sender=writer_key.address),
            expected_chain_id=CHAIN_ID,
            directory=Path(settings.state_dir) / "deployments",
        )

        # 1. raw signed transfers
        rpc = Rpc(url)
        base = int(rpc.call("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
        raws = [
            raw_key.sign_transaction(
                {
                    "type": 2,
                    "chainId": CHAIN_ID,
                    "nonce": n,
                    "to": deployer.address,
                    "value": 1,
                    "gas": 21_000,
                    "maxFeePerGas": 4 * base + 10**9,
                    "maxPriorityFeePerGas": 10**9,
                }
            )
            for n in range(args.raw)
        ]
        started = time.perf_counter()
        hashes = [
            rpc.call("eth_sendRawTransaction", ["0x" + bytes(s.raw_transaction).hex()])
            for s in raws
        ]
        while rpc.call("eth_getTransactionReceipt", [hashes[-1]]) is None:
            time.sleep(0.005)
        raw_s = time.perf_counter() - started
        results["raw_signed_transfers"] = {
            "txs": args.raw,
            "s": round(raw_s, 2),
            "txs_per_s": round(args.raw / raw_s),
        }
        print(f"raw: {args.raw} signed transfers in {raw_s:.2f}s = {args.raw / raw_s:.0f} tx/s")

        # players with wallets
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO games (game_id, name, api_key_hash, api_key_prefix) "
                    "VALUES (:g, :g, :h, 'k')"
                ),
                {"g": game, "h": uuid.uuid4().hex * 2},
            )
            for i in range(args.players):
                user = f"bench-{i}"
                conn.execute(
                    text(
                        "INSERT INTO app_users (user_id, token_hash, token_prefix) "
                        "VALUES (:u, :h, 't')"
                    ),
                    {"u": user, "h": uuid.uuid4().hex * 2},
                )
                conn.execute(
                    text(
                        "INSERT INTO user_wallets (address, user_id, is_primary, kind, chain_id)"
                        " VALUES (:a, :u, true, 'eoa', :c)"
                    ),
                    {"a": Account.create().address, "u": user, "c": CHAIN_ID},
                )
                conn.execute(
                    text(
                        "INSERT INTO player_links (game_id, player_id, user_id) VALUES (:g, :p, :u)"
                    ),
                    {"g": game, "p": f"p{i}", "u": user},
                )

        def insert(n: int, offset: int) -> None:
            rows = [
                {
                    "command_id": str(uuid.uuid4()),
                    "source_event_id": str(uuid.uuid4()),
                    "player_id": f"p{(offset + k) % args.players}",
                }
                for k in range(n)
            ]
            with engine.begin() as conn:
                conn.execute(text(_INSERT), {"game": game, **json_rows(rows)})

        def confirmed() -> int:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        text("SELECT count(*) FROM reward_commands WHERE status = 'confirmed'")
                    ).scalar_one()
                )

        config = WriterConfig.from_settings(
            settings.model_copy(
                update={"writer_batch_size": args.batch_size, "writer_poll_s": 0.02}
            ),
            CHAIN_ID,
            deployment.address("StrideRewardsDistributor"),
        )
        writer = ChainWriter(engine, Rpc(url), LocalKeySigner(writer_key.key.hex()), config)
        stop = threading.Event()

        # 2. backlog
        insert(args.rewards, 0)
        thread = threading.Thread(target=writer.run, args=(stop.is_set, lambda: None), daemon=True)
        started = time.perf_counter()
        thread.start()
        while confirmed() < args.rewards:
            time.sleep(0.02)
        backlog_s = time.perf_counter() - started
        with engine.connect() as conn:
            txs, gas = conn.execute(
                text("SELECT count(*), sum(gas_used) FROM chain_txs WHERE status = 'confirmed'")
            ).one()
        results["backlog"] = {
            "rewards": args.rewards,
            "s": round(backlog_s, 2),
            "rewards_per_s": round(args.rewards / backlog_s),
            "txs": int(txs),
            "gas_per_reward": round(int(gas) / args.rewards),
            "vs_raw_tx_rate": round((args.rewards / backlog_s) / (args.raw / raw_s), 2),
        }
        print(f"backlog: {args.rewards} rewards confirmed in {backlog_s:.2f}s", results["backlog"])

        # 3. steady rate
        with engine.connect() as conn:
            before = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        per_tick = max(1, round(args.rate / 10))
        ticks = round(args.seconds * 10)
        started = time.perf_counter()
        for tick in range(ticks):
            insert(per_tick, tick * per_tick)
            time.sleep(max(0.0, started + (tick + 1) * 0.1 - time.perf_counter()))
        total = args.rewards + per_tick * ticks
        deadline = time.monotonic() + 120
        while confirmed() < total and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=10)
        with engine.connect() as conn:
            latencies = [
                float(r[0])
                for r in conn.execute(
                    text(
                        "SELECT extract(epoch FROM updated_at - issued_at) FROM reward_commands"
                        " WHERE issued_at >= :b AND status = 'confirmed'"
                    ),
                    {"b": before},
                )
            ]
        results["steady"] = {
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "rewards": len(latencies),
            "confirmations": settings.writer_confirmations,
            "p50_s": round(percentile(latencies, 50), 3),
            "p99_s": round(percentile(latencies, 99), 3),
            "max_s": round(max(latencies), 3),
        }
        print("steady:", results["steady"])
        rpc.close()
    results["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
