"""``ChainLog`` v1: one decoded EVM log on ``chain.logs.v1``, or the retraction of one.

The indexer publishes one per log it decodes, keyed ``<chain_id>:<contract>`` so that one
contract's logs (and their retractions) stay in order in one partition. A log is identified
by ``(chain_id, block_hash, log_index)``: the projections are idempotent on that key, and a
retraction (``removed=True``) names the log of an orphaned block it takes back.

Token transfers of every standard are normalized to ``moves`` (ERC-20: no token id; ERC-721:
amount 1; ERC-1155 single and batch: one move per id), so the projections need not know the
standard's encoding. Integers of ``args`` and ``moves`` travel as decimal strings (uint256
does not fit a JSON number that every reader parses exactly).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HEX_ADDRESS = r"^0x[0-9a-f]{40}$"
HEX_HASH = r"^0x[0-9a-f]{64}$"
UINT = r"^[0-9]{1,78}$"

Standard = Literal["erc20", "erc721", "erc1155"]


class TokenMove(BaseModel):
    """One holder-to-holder movement of a token (the zero address: mint or burn)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: str = Field(pattern=HEX_ADDRESS)
    recipient: str = Field(pattern=HEX_ADDRESS)
    token_id: str | None = Field(default=None, pattern=UINT, description="None for ERC-20")
    amount: str = Field(pattern=UINT)


class ChainLog(BaseModel):
    """A decoded log of a canonical block, or (``removed``) its retraction after a reorg."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    chain_id: int = Field(ge=1)
    block_number: int = Field(ge=0)
    block_hash: str = Field(pattern=HEX_HASH)
    block_timestamp: int = Field(ge=0)
    tx_hash: str = Field(pattern=HEX_HASH)
    log_index: int = Field(ge=0)
    contract: str = Field(pattern=HEX_ADDRESS, description="lower-case hex")
    event: str = Field(min_length=1, max_length=64, description="e.g. Transfer, Staked")
    standard: Standard | None = Field(default=None, description="for token transfers")
    moves: list[TokenMove] = Field(default_factory=list)
    args: dict[str, Any] = Field(default_factory=dict, description="the event's decoded fields")
    removed: bool = Field(default=False, description="True: this log's block was orphaned")

    @property
    def key(self) -> bytes:
        """The Kafka key: one contract's logs stay in one partition, in order."""
        return f"{self.chain_id}:{self.contract}".encode()

    @property
    def log_id(self) -> tuple[int, str, int]:
        """The idempotency key of the projections."""
        return (self.chain_id, self.block_hash, self.log_index)

    def retraction(self) -> ChainLog:
        return self.model_copy(update={"removed": True})


def parse_chain_log(raw: bytes) -> ChainLog:
    """A ``chain.logs.v1`` message; ``ValueError`` (pydantic's) names what is wrong."""
    return ChainLog.model_validate_json(raw)
