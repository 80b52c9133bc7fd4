"""Where the Stride contracts are on each chain: the deployment files
(``<chain id>.json``) that ``stride contracts deploy`` and ``stride up anvil`` write, read as
data from ``STRIDE_CONTRACT_DEPLOYMENTS_DIR``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.platform.errors import NotFound


@dataclass(frozen=True)
class StrideContracts:
    """One chain's Stride contracts (EIP-55 addresses) and its bridge's trusted peers."""

    chain_id: int
    token: str
    items: str
    vault: str
    market: str
    bridge: str
    bridge_mode: str  # "lock" (home chain) or "mint" (a remote chain)
    bridge_peers: tuple[int, ...]


def stride_contracts(directory: Path, chain_id: int) -> StrideContracts:
    """The recorded deployment of ``chain_id``; NotFound when there is none."""
    path = directory / f"{chain_id}.json"
    if not path.exists():
        raise NotFound(
            f"no Stride contracts are recorded for chain {chain_id} "
            f"(no {path.name} in STRIDE_CONTRACT_DEPLOYMENTS_DIR)"
        )
    data = json.loads(path.read_text())
    address = {name: record["address"] for name, record in data["contracts"].items()}
    config = data.get("config") or {}
    return StrideContracts(
        chain_id=chain_id,
        token=address["StrideToken"],
        items=address["StrideItems"],
        vault=address["OmnibusVault"],
        market=address["StrideMarketplace"],
        bridge=address["StrideBridge"],
        bridge_mode=str(config.get("bridge_mode", "lock")),
        bridge_peers=tuple(int(p) for p in config.get("bridge_peers", [])),
    )
