"""Pure decoders: raw eth_getLogs JSON -> ChainLog, without a node."""

import pytest
from eth_abi import encode

from core.chain.contracts import ChainLog, parse_chain_log
from core.chain.decode import (
    TRANSFER,
    TRANSFER_BATCH,
    TRANSFER_SINGLE,
    decode_log,
    decode_range,
    indexed_topics,
    topic_of,
)
from core.chain.reorg import BlockRef

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20
TOKEN = "0x" + "c0" * 20
ZERO = "0x" + "00" * 20
BLOCK_HASH = "0x" + "11" * 32
TX = "0x" + "22" * 32


def word(address: str) -> str:
    return "0x" + "00" * 12 + address[2:]


def raw(topics: list[str], data: bytes = b"", log_index: int = 3) -> dict:
    return {
        "address": TOKEN.upper().replace("0X", "0x"),
        "topics": topics,
        "data": "0x" + data.hex(),
        "blockNumber": "0x10",
        "blockHash": BLOCK_HASH,
        "transactionHash": TX,
        "logIndex": hex(log_index),
        "removed": False,
    }


def test_erc20_transfer_has_three_topics_and_the_amount_in_data() -> None:
    record = decode_log(raw([TRANSFER, word(ALICE), word(BOB)], encode(["uint256"], [5])), 7, 99)
    assert record is not None
    assert (record.standard, record.event, record.chain_id, record.block_number) == (
        "erc20",
        "Transfer",
        7,
        16,
    )
    assert record.contract == TOKEN  # lower-cased
    (move,) = record.moves
    assert (move.sender, move.recipient, move.token_id, move.amount) == (ALICE, BOB, None, "5")
    assert record.key == f"7:{TOKEN}".encode()
    assert record.log_id == (7, BLOCK_HASH, 3)


def test_erc721_transfer_has_the_token_id_as_fourth_topic() -> None:
    token_id = 2**200 + 1
    record = decode_log(raw([TRANSFER, word(ZERO), word(BOB), "0x" + f"{token_id:064x}"]), 1, 0)
    assert record is not None and record.standard == "erc721"
    (move,) = record.moves
    assert (move.sender, move.recipient, move.token_id, move.amount) == (
        ZERO,
        BOB,
        str(token_id),
        "1",
    )


def test_erc1155_single_and_batch_become_one_move_per_id() -> None:
    operator = word(ALICE)
    single = decode_log(
        raw(
            [TRANSFER_SINGLE, operator, word(ALICE), word(BOB)],
            encode(["uint256", "uint256"], [9, 40]),
        ),
        1,
        0,
    )
    assert single is not None and single.standard == "erc1155"
    assert [(m.token_id, m.amount) for m in single.moves] == [("9", "40")]
    batch = decode_log(
        raw(
            [TRANSFER_BATCH, operator, word(ZERO), word(BOB)],
            encode(["uint256[]", "uint256[]"], [[1, 2, 3], [10, 20, 30]]),
        ),
        1,
        0,
    )
    assert batch is not None and batch.event == "TransferBatch"
    assert [(m.token_id, m.amount, m.sender) for m in batch.moves] == [
        ("1", "10", ZERO),
        ("2", "20", ZERO),
        ("3", "30", ZERO),
    ]


def test_stride_events_decode_from_the_committed_abis() -> None:
    staked = topic_of("Staked(address,uint256)")
    record = decode_log(raw([staked, word(ALICE)], encode(["uint256"], [10**18])), 1, 5)
    assert record is not None
    assert (record.event, record.standard, record.args) == (
        "Staked",
        None,
        {"account": ALICE, "amount": str(10**18)},
    )
    listed = topic_of("Listed(uint256,address,address,uint256,address,uint256,uint64)")
    record = decode_log(
        raw(
            [listed, "0x" + f"{4:064x}", word(ALICE), word(TOKEN)],
            encode(["uint256", "address", "uint256", "uint64"], [7, BOB, 500, 1_900_000_000]),
        ),
        1,
        5,
    )
    assert record is not None and record.event == "Listed"
    assert record.args == {
        "listingId": "4",
        "seller": ALICE,
        "collection": TOKEN,
        "tokenId": "7",
        "currency": BOB,
        "price": "500",
        "expiry": "1900000000",
    }
    assert staked in indexed_topics() and listed in indexed_topics()


def test_logs_that_do_not_fit_their_event_are_skipped() -> None:
    assert decode_log(raw([TRANSFER, word(ALICE), word(BOB)], b"\x01"), 1, 0) is None  # short
    assert decode_log(raw([TRANSFER, word(ALICE)]), 1, 0) is None  # too few topics
    assert (
        decode_log(raw([TRANSFER_SINGLE, word(ALICE), word(ALICE), word(BOB)], b""), 1, 0) is None
    )
    bad_batch = encode(["uint256[]", "uint256[]"], [[1, 2], [10]])
    assert (
        decode_log(raw([TRANSFER_BATCH, word(ALICE), word(ALICE), word(BOB)], bad_batch), 1, 0)
        is None
    )
    assert decode_log(raw([topic_of("Unknown(uint256)")], encode(["uint256"], [1])), 1, 0) is None
    assert decode_log(raw([]), 1, 0) is None


def test_a_record_round_trips_through_its_message_and_retracts() -> None:
    record = decode_log(raw([TRANSFER, word(ALICE), word(BOB)], encode(["uint256"], [5])), 7, 99)
    assert isinstance(record, ChainLog)
    again = parse_chain_log(record.model_dump_json().encode())
    assert again == record
    assert record.retraction().removed and record.retraction().log_id == record.log_id


def _every_kind() -> list[dict]:
    staked = topic_of("Staked(address,uint256)")
    return [
        raw([TRANSFER, word(ALICE), word(BOB)], encode(["uint256"], [5]), 0),
        raw([TRANSFER, word(ZERO), word(BOB), "0x" + f"{2**200 + 1:064x}"], log_index=1),
        raw(
            [TRANSFER_SINGLE, word(ALICE), word(ALICE), word(BOB)],
            encode(["uint256", "uint256"], [9, 40]),
            2,
        ),
        raw(
            [TRANSFER_BATCH, word(ALICE), word(ZERO), word(BOB)],
            encode(["uint256[]", "uint256[]"], [[1, 2], [10, 20]]),
            3,
        ),
        raw([staked, word(ALICE)], encode(["uint256"], [10**18]), 4),
        raw([topic_of("Unknown(uint256)")], encode(["uint256"], [1]), 5),  # not published
        raw([TRANSFER, word(ALICE), word(BOB)], b"\x01", 6),  # does not fit: skipped
    ]


HEADER = BlockRef(number=16, hash=BLOCK_HASH, parent_hash="0x" + "10" * 32, timestamp=99)


def test_a_range_renders_exactly_the_json_of_each_record() -> None:
    logs = _every_kind()
    encoded = decode_range(logs, [HEADER], 7)
    assert encoded is not None
    records = [r for r in (decode_log(one, 7, 99) for one in logs) if r is not None]
    assert len(encoded) == len(records) == 5
    for fast, record in zip(encoded, records, strict=True):
        assert fast.payload == record.model_dump_json()  # the same bytes on Kafka
        assert parse_chain_log(fast.payload.encode()) == record  # and a valid ChainLog v1
        assert (fast.key, fast.block_number, fast.block_hash, fast.log_index) == (
            record.key,
            record.block_number,
            record.block_hash,
            record.log_index,
        )


def test_a_range_refuses_what_the_contract_refuses_and_a_moved_chain() -> None:
    (log,) = _every_kind()[:1]
    assert decode_range([{**log, "blockHash": "0x" + "99" * 32}], [HEADER], 7) is None  # moved
    assert decode_range([log], [], 7) is None  # a block outside the range
    for field, value in (("transactionHash", "0x12"), ("address", "0xnot-an-address")):
        with pytest.raises(ValueError):
            decode_range([{**log, field: value}], [HEADER], 7)
    with pytest.raises(ValueError):
        decode_range([{**log, "topics": [TRANSFER, "0xzz", word(BOB)]}], [HEADER], 7)
    assert decode_range([{**log, "removed": True}], [HEADER], 7) == []
