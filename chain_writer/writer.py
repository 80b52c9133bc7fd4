"""One chain's writer: reward commands in PostgreSQL → signed transactions → confirmations.

A pass (:meth:`ChainWriter.step`):

1. **release** commands whose wait is over (a wallet was linked, a permit arrived);
2. **resolve** pending commands: player → app user → primary wallet, or ``awaiting_wallet``;
   a burn without its permit is ``needs_authorization`` (``core.rewards.states``);
3. **track** every live transaction: receipts (of every hash it was broadcast under), reorgs
   (a mined tx whose receipt vanished is waiting again and is broadcast again), fee bumps
   for transactions unmined after ``writer_bump_after_blocks`` (same nonce, higher fees, up
   to the cap), confirmations after ``writer_confirmations`` blocks, decoded reverts;
4. **send**: queued mints in batches of ``writer_batch_size`` through ``mintBatch``, burns
   one by one through ``burnWithPermit``, at most ``writer_max_inflight_txs`` unmined. Each
   transaction is signed, recorded with its nonce and commands, committed, and only then
   broadcast (``core.rewards.store``);
5. **publish** outcomes (confirmed, failed) to rewards.outcomes.v1 from the outbox column;
6. **reconcile** nonces with the chain on start, every ``writer_reconcile_s`` and after a
   "nonce too low" answer (``core.rewards.nonces``).

Exactly once on chain does not depend on this loop being right about what was sent: the
distributor pays each command id once and skips a repeat, so a transaction sent again after
a crash, a drop or a reorg can only complete what is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import Engine

from core.chain.rpc import Rpc, RpcError
from core.chain.signer import Signer
from core.rewards import store
from core.rewards.batching import BURN_GAS, batch_size_for, batches, mint_gas_limit
from core.rewards.calls import burn_calldata, decode_revert, executed_commands, mint_batch_calldata
from core.rewards.fees import GWEI, FeePolicy, Fees, bumped, initial_fees, should_bump
from core.rewards.models import TxKind, TxStatus
from core.rewards.nonces import reconcile
from core.rewards.outcomes import RewardOutcome

log = logging.getLogger(__name__)

QUEUE = Gauge("stride_writer_commands", "reward commands per status", ["status"])
NEXT_NONCE = Gauge("stride_writer_next_nonce", "the sender's next local nonce", ["chain_id"])
LIVE_TXS = Gauge("stride_writer_live_txs", "transactions sent, not confirmed", ["chain_id"])
CONFIRMED = Counter("stride_writer_confirmed_commands", "commands confirmed", ["chain_id"])
FAILED = Counter("stride_writer_failed_commands", "commands failed on chain", ["chain_id"])
BUMPS = Counter("stride_writer_fee_bumps", "transactions replaced with higher fees", ["chain_id"])
REPAIRS = Counter("stride_writer_nonce_repairs", "nonce drifts repaired", ["chain_id"])
RESENT = Counter("stride_writer_rebroadcasts", "transactions broadcast again", ["chain_id"])

RESOLVE_PER_PASS = 20_000
OUTCOMES_PER_PASS = 5_000


@dataclass(frozen=True)
class WriterConfig:
    chain_id: int
    distributor: str
    batch_size: int
    max_inflight: int
    confirmations: int
    reconcile_s: float
    poll_s: float
    fees: FeePolicy

    @classmethod
    def from_settings(cls, settings: Any, chain_id: int, distributor: str) -> WriterConfig:
        return cls(
            chain_id=chain_id,
            distributor=distributor,
            batch_size=settings.writer_batch_size,
            max_inflight=settings.writer_max_inflight_txs,
            confirmations=settings.writer_confirmations,
            reconcile_s=settings.writer_reconcile_s,
            poll_s=settings.writer_poll_s,
            fees=FeePolicy(
                max_fee_cap=int(Decimal(settings.writer_max_fee_gwei) * GWEI),
                min_priority_fee=int(Decimal(settings.writer_priority_fee_gwei) * GWEI),
                bump_after_blocks=settings.writer_bump_after_blocks,
                bump_percent=settings.writer_fee_bump_percent,
            ),
        )


@dataclass
class Head:
    number: int
    base_fee: int
    gas_limit: int


@dataclass
class PassReport:
    resolved: int = 0
    sent: int = 0
    confirmed: int = 0
    failed: int = 0
    bumped: int = 0
    rebroadcast: int = 0
    published: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.resolved or self.sent or self.confirmed or self.failed or self.bumped)


class ChainWriter:
    def __init__(
        self,
        engine: Engine,
        rpc: Rpc,
        signer: Signer,
        config: WriterConfig,
        publish: Callable[[list[tuple[bytes, bytes]]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.rpc = rpc
        self.signer = signer
        self.config = config
        self.sender = signer.address
        self.publish = publish
        self._reconciled_at = 0.0
        self._metrics_at = 0.0
        self._last_mined_block = 0  # the sender's progress, for stuck detection
        self._needs_reconcile = True
        self._labels = {"chain_id": str(config.chain_id)}

    # ---- chain reads -----------------------------------------------------------------

    def head(self) -> Head:
        block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return Head(
            number=int(block["number"], 16),
            base_fee=int(block.get("baseFeePerGas", "0x0"), 16),
            gas_limit=int(block["gasLimit"], 16),
        )

    def _priority_hint(self) -> int:
        try:
            return int(self.rpc.call("eth_maxPriorityFeePerGas"), 16)
        except RpcError:
            return 0

    def _broadcast(self, raw: bytes) -> str | None:
        """None when the node took it (or already has it), else the node's refusal."""
        try:
            self.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        except RpcError as exc:
            message = str(exc).lower()
            if "already known" in message or "known transaction" in message:
                return None
            if "nonce too low" in message or "nonce too high" in message:
                self._needs_reconcile = True
            return str(exc)
        return None

    # ---- the pass --------------------------------------------------------------------

    def step(self) -> PassReport:
        report = PassReport()
        with self.engine.begin() as conn:
            store.release_waiting(conn)
        counts = store.resolve_pending(self.engine, self.config.chain_id, RESOLVE_PER_PASS)
        report.resolved = sum(counts.values())
        head = self.head()
        if (
            self._needs_reconcile
            or time.monotonic() - self._reconciled_at > self.config.reconcile_s
        ):
            self.reconcile_nonces(report)
        self.track(head, report)
        self.send(head, report)
        self.publish_outcomes(report)
        return report

    def run(self, stopping: Callable[[], bool], heartbeat: Callable[[], None]) -> None:
        backoff = self.config.poll_s
        while not stopping():
            try:
                report = self.step()
                self.update_metrics()
                backoff = self.config.poll_s
                heartbeat()
                if not report.busy:
                    time.sleep(self.config.poll_s)
            except Exception as exc:
                log.warning("chain %d: pass failed: %s", self.config.chain_id, exc, exc_info=True)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    # ---- nonces ----------------------------------------------------------------------

    def reconcile_nonces(self, report: PassReport) -> None:
        chain_id, sender = self.config.chain_id, self.sender
        latest = int(self.rpc.call("eth_getTransactionCount", [sender, "latest"]), 16)
        pending = int(self.rpc.call("eth_getTransactionCount", [sender, "pending"]), 16)
        live = store.live_txs(self.engine, chain_id, sender)
        receipts = self._receipts(live)
        unmined = [tx for tx in live if tx.id not in receipts]
        with self.engine.begin() as conn:
            local_next = store.lock_sender(conn, chain_id, sender)
            repair = reconcile(local_next, latest, pending, [tx.nonce for tx in unmined])
            repaired = bool(repair.drop or repair.rebroadcast) or (
                local_next is not None and repair.next_nonce != local_next
            )
            by_nonce = {tx.nonce: tx for tx in unmined}
            dropped = [by_nonce[n].id for n in repair.drop]
            if dropped:
                store.drop_txs(conn, dropped, f"nonce taken by another transaction ({repair.note})")
            store.set_sender(
                conn,
                chain_id,
                sender,
                repair.next_nonce,
                chain_latest=latest,
                chain_pending=pending,
                repair=repair.note if repaired else None,
            )
        if repaired and repair.note:
            log.warning("chain %d: %s", chain_id, repair.note)
            report.notes.append(repair.note)
            REPAIRS.labels(**self._labels).inc()
        for nonce in repair.rebroadcast:
            if self._broadcast(by_nonce[nonce].raw_tx) is None:
                report.rebroadcast += 1
                RESENT.labels(**self._labels).inc()
        self._reconciled_at = time.monotonic()
        self._needs_reconcile = False

    # ---- receipts, confirmations, reorgs, bumps --------------------------------------

    def _receipts(self, live: list[store.LiveTx]) -> dict[int, dict[str, Any]]:
        """tx id -> the receipt of whichever of its hashes was mined."""
        calls = [(tx.id, h) for tx in live for h in tx.tx_hashes]
        if not calls:
            return {}
        answers = self.rpc.batch([("eth_getTransactionReceipt", [h]) for _, h in calls])
        found: dict[int, dict[str, Any]] = {}
        for (tx_id, _), receipt in zip(calls, answers, strict=True):
            if receipt:
                found[tx_id] = receipt
        return found

    def track(self, head: Head, report: PassReport) -> None:
        live = store.live_txs(self.engine, self.config.chain_id, self.sender)
        receipts = self._receipts(live)
        # The sender is stuck when its lowest unmined nonce has not moved for the configured
        # blocks: only that transaction is replaced (the later ones cannot be mined before
        # it), and blocks count from our last mined transaction, so one queued behind our
        # own others is not mistaken for an underpriced one.
        self._last_mined_block = max(
            [self._last_mined_block, *(int(r["blockNumber"], 16) for r in receipts.values())]
        )
        last_mined = self._last_mined_block
        unmined = [tx for tx in live if tx.id not in receipts and tx.status is TxStatus.submitted]
        lowest = min(unmined, key=lambda tx: tx.nonce) if unmined else None
        for tx in live:
            receipt = receipts.get(tx.id)
            if receipt is not None:
                self._mined(tx, receipt, head, report)
            elif tx.status is TxStatus.mined:
                log.warning(
                    "chain %d: tx %s left the chain (reorg)", self.config.chain_id, tx.tx_hash
                )
                store.mark_unmined(self.engine, tx.id)
                if self._broadcast(tx.raw_tx) is None:
                    report.rebroadcast += 1
                    RESENT.labels(**self._labels).inc()
            elif tx.status is TxStatus.signed:
                refusal = self._broadcast(tx.raw_tx)
                if refusal is None:
                    store.mark_broadcast(self.engine, tx.id, head.number)
                else:
                    log.warning(
                        "chain %d: nonce %d refused: %s", self.config.chain_id, tx.nonce, refusal
                    )
            elif tx is lowest and should_bump(
                max(tx.broadcast_block or 0, last_mined), head.number, self.config.fees
            ):
                self._bump(tx, head, report)

    def _mined(
        self, tx: store.LiveTx, receipt: dict[str, Any], head: Head, report: PassReport
    ) -> None:
        block = int(receipt["blockNumber"], 16)
        block_hash = str(receipt["blockHash"]).lower()
        if tx.status is not TxStatus.mined or tx.mined_block_hash != block_hash:
            gas_used = int(receipt["gasUsed"], 16)
            price = int(receipt.get("effectiveGasPrice", "0x0"), 16)
            store.mark_mined(
                self.engine,
                tx.id,
                block=block,
                block_hash=block_hash,
                tx_hash=str(receipt["transactionHash"]).lower(),
                gas_used=gas_used,
                fee_paid_wei=gas_used * price,
            )
        if head.number - block + 1 < self.config.confirmations:
            return
        if int(receipt["status"], 16) == 1:
            paid = executed_commands(receipt.get("logs", []), self.config.distributor)
            missing = [c for c in tx.command_ids if c not in paid]
            if missing:  # cannot happen with the distributor; refuse to call it confirmed
                store.finish_tx(
                    self.engine,
                    tx.id,
                    confirmed=False,
                    reason=f"mined without an event for {len(missing)} command(s)",
                )
                report.failed += len(tx.command_ids)
                return
            store.finish_tx(self.engine, tx.id, confirmed=True)
            report.confirmed += len(tx.command_ids)
            CONFIRMED.labels(**self._labels).inc(len(tx.command_ids))
        else:
            reason = self._revert_reason(tx, block)
            store.finish_tx(self.engine, tx.id, confirmed=False, reason=reason)
            report.failed += len(tx.command_ids)
            FAILED.labels(**self._labels).inc(len(tx.command_ids))
            log.warning("chain %d: tx %s reverted: %s", self.config.chain_id, tx.tx_hash, reason)

    def _revert_reason(self, tx: store.LiveTx, block: int) -> str:
        """Replay the call on the state before its block to get the revert data."""
        raw = self.rpc.call("eth_getTransactionByHash", [tx.tx_hash]) or {}
        call = {
            "from": self.sender,
            "to": tx.to_address,
            "data": raw.get("input", "0x"),
            "gas": hex(tx.gas_limit),
        }
        try:
            self.rpc.call("eth_call", [call, hex(max(block - 1, 0))])
        except RpcError as exc:
            data = _revert_data(exc)
            if data:
                return decode_revert(data)
            return f"reverted: {exc}"
        return "reverted on chain (out of gas at the limit given, or state changed in its block)"

    def _bump(self, tx: store.LiveTx, head: Head, report: PassReport) -> None:
        fees = bumped(tx.fees, head.base_fee, self.config.fees)
        if fees is None:
            return  # at the cap: it waits (shown by stride chain status)
        signed = self.signer.sign_transaction(
            self._tx_dict(tx.nonce, tx.to_address, tx.gas_limit, fees, self._data_of(tx))
        )
        store.record_replacement(
            self.engine,
            tx.id,
            fees=fees,
            tx_hash=signed.tx_hash,
            raw_tx=signed.raw,
            head=head.number,
        )
        refusal = self._broadcast(signed.raw)
        if refusal is not None:
            log.warning(
                "chain %d: replacement of nonce %d refused: %s",
                self.config.chain_id,
                tx.nonce,
                refusal,
            )
        report.bumped += 1
        BUMPS.labels(**self._labels).inc()
        log.info(
            "chain %d: nonce %d unmined for %d blocks, replaced at max fee %d gwei",
            self.config.chain_id,
            tx.nonce,
            head.number - (tx.broadcast_block or head.number),
            fees.max_fee_per_gas // GWEI,
        )

    @staticmethod
    def _data_of(tx: store.LiveTx) -> bytes:
        from eth_account.typed_transactions import TypedTransaction
        from hexbytes import HexBytes

        return bytes(TypedTransaction.from_bytes(HexBytes(tx.raw_tx)).as_dict()["data"])

    # ---- sending ---------------------------------------------------------------------

    def _tx_dict(self, nonce: int, to: str, gas: int, fees: Fees, data: bytes) -> dict[str, Any]:
        return {
            "type": 2,
            "chainId": self.config.chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "data": "0x" + data.hex(),
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }

    def send(self, head: Head, report: PassReport) -> None:
        live = store.live_txs(self.engine, self.config.chain_id, self.sender)
        room = self.config.max_inflight - sum(1 for tx in live if tx.status is not TxStatus.mined)
        if room <= 0:
            return
        size = batch_size_for(self.config.batch_size, head.gas_limit)
        fees = initial_fees(head.base_fee, self._priority_hint(), self.config.fees)
        signed_ids: list[tuple[int, bytes]] = []
        with self.engine.begin() as conn:
            nonce = store.lock_sender(conn, self.config.chain_id, self.sender)
            if nonce is None:
                self._needs_reconcile = True
                return
            burns = store.queued_burns(conn, self.config.chain_id, room)
            room -= len(burns)
            mints = store.queued_mints(conn, self.config.chain_id, room * size) if room > 0 else []
            for burn in burns:
                data = burn_calldata(
                    burn.command_id,
                    burn.holder,
                    burn.amount_wei,
                    burn.deadline,
                    burn.v,
                    burn.r,
                    burn.s,
                )
                signed_ids.append(
                    self._sign_and_record(
                        conn, nonce, TxKind.burn, BURN_GAS, fees, data, [burn.command_id]
                    )
                )
                nonce += 1
            for batch in batches(mints, size, max(room, 0)):
                data = mint_batch_calldata(batch)
                ids = [e.command_id for e in batch]
                signed_ids.append(
                    self._sign_and_record(
                        conn, nonce, TxKind.mint_batch, mint_gas_limit(len(batch)), fees, data, ids
                    )
                )
                nonce += 1
                report.sent += len(batch)
            report.sent += len(burns)
            if signed_ids:
                store.set_sender(conn, self.config.chain_id, self.sender, nonce)
        sent: list[int] = []
        for tx_id, raw in signed_ids:
            refusal = self._broadcast(raw)
            if refusal is not None:
                log.warning("chain %d: broadcast refused: %s", self.config.chain_id, refusal)
                break  # later nonces would only queue behind it; the next pass retries
            sent.append(tx_id)
        if sent:
            # Blocks until a fee bump count from the head after these broadcasts: with
            # automine each of them is a block, and the pass's first head would make the
            # last ones look unmined for len(sent) blocks already.
            after = int(self.rpc.call("eth_blockNumber"), 16)
            for tx_id in sent:
                store.mark_broadcast(self.engine, tx_id, after)

    def _sign_and_record(
        self, conn: Any, nonce: int, kind: TxKind, gas: int, fees: Fees, data: bytes, ids: list[Any]
    ) -> tuple[int, bytes]:
        signed = self.signer.sign_transaction(
            self._tx_dict(nonce, self.config.distributor, gas, fees, data)
        )
        tx_id = store.record_tx(
            conn,
            store.NewTx(
                chain_id=self.config.chain_id,
                sender=self.sender,
                nonce=nonce,
                kind=kind,
                to_address=self.config.distributor,
                gas_limit=gas,
                fees=fees,
                tx_hash=signed.tx_hash,
                raw_tx=signed.raw,
                command_ids=ids,
            ),
        )
        return tx_id, signed.raw

    # ---- outcomes and metrics --------------------------------------------------------

    def publish_outcomes(self, report: PassReport) -> None:
        if self.publish is None:
            return
        rows = store.unpublished_outcomes(self.engine, self.config.chain_id, OUTCOMES_PER_PASS)
        if not rows:
            return
        records = []
        for row in rows:
            outcome = RewardOutcome.model_validate(row)
            records.append((outcome.player_id.encode(), outcome.model_dump_json().encode()))
        self.publish(records)
        store.mark_outcomes_published(self.engine, [r["command_id"] for r in rows])
        report.published += len(rows)

    def update_metrics(self, every_s: float = 5.0) -> None:
        """The gauges, at most every ``every_s`` (the status counts scan the table)."""
        if time.monotonic() - self._metrics_at < every_s:
            return
        self._metrics_at = time.monotonic()
        for status, count in store.status_counts(self.engine).items():
            QUEUE.labels(status=status).set(count)
        nonce = store.next_nonce(self.engine, self.config.chain_id, self.sender)
        live = store.live_txs(self.engine, self.config.chain_id, self.sender)
        LIVE_TXS.labels(**self._labels).set(len(live))
        if nonce is not None:
            NEXT_NONCE.labels(**self._labels).set(nonce)


def _revert_data(exc: RpcError) -> str | None:
    """The hex revert data inside a node's error answer (``{'data': '0x...'}``)."""
    import re

    match = re.search(r"'data': '(0x[0-9a-fA-F]*)'", str(exc)) or re.search(
        r"(0x[0-9a-fA-F]{8,})", str(exc)
    )
    return match.group(1) if match else None
