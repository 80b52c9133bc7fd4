"""NFT metadata against a local HTTP gateway (ipfs://, http, data: on chain; timeout,
oversize, invalid JSON, private address refused) and the read API on the projections the
real indexer, Kafka and Faust worker produced."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.main import create_app
from chain_indexer.metadata_worker import one_pass
from cli.stack import free_port
from core.chain import metadata
from core.chain.reads import add_collection
from core.chain.rpc import Rpc
from core.identity.app_users import create_app_user
from core.platform.config import Settings, get_settings
from core.platform.db import get_engine, session_scope
from tests.integration.chain.conftest import (
    Node,
    assert_projections_match,
    deploy_samples,
    indexer_of,
    reset,
    start_node,
    wait_for,
)

pytestmark = pytest.mark.integration
CHAIN_ID = 31394
E18 = 10**18
SLOW_S = 3.0


class Gateway(BaseHTTPRequestHandler):
    """Serves /ipfs/<cid>/<id> and /meta/<id>; some ids misbehave on purpose."""

    def do_GET(self) -> None:
        path = self.path
        if path.endswith("/8"):
            time.sleep(SLOW_S)  # longer than the fetch timeout
        if path.endswith("/9"):
            body = b'{"name": "' + b"x" * 10_000 + b'"}'
        elif path.endswith("/10"):
            body = b"{this is not json"
        elif path.startswith("/ipfs/bafyapes/"):
            token = path.rsplit("/", 1)[1]
            body = json.dumps(
                {
                    "name": f"Ape #{token}",
                    "image": f"ipfs://bafyimg/{token}.png",
                    "attributes": [{"trait_type": "fur", "value": "gold"}],
                }
            ).encode()
        elif path.startswith("/meta/"):
            body = json.dumps(
                {"name": f"Thing {path}", "image": "http://img.example/x.png", "attributes": []}
            ).encode()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    yield from start_node(CHAIN_ID)


@pytest.fixture(scope="module")
def world(
    node: Node,
    gateway: str,
    db_engine: Engine,
    chain_settings: Settings,
    lake_worker: Settings,
) -> SimpleNamespace:
    """Sample contracts with tokens of every kind held by alice, indexed and projected."""
    c = deploy_samples(node.w3, "ipfs://bafyapes/", f"{gateway}/meta/")
    admin, alice, bob = node.w3.eth.accounts[:3]
    c.token.functions.mint(alice, 5 * E18).transact({"from": admin})
    c.token.functions.transfer(bob, E18).transact({"from": alice})
    c.ipfs721.functions.mint(alice, 1).transact({"from": alice})
    c.ipfs721.functions.mint(alice, 2).transact({"from": alice})
    for token_id in (7, 8, 9, 10):
        c.http721.functions.mint(alice, token_id).transact({"from": alice})
    c.multi.functions.mint(alice, 3, 5).transact({"from": alice})
    c.items.functions.mint(alice, "Sword", "ipfs://bafysword", [("rarity", "rare")]).transact(
        {"from": admin}
    )
    reset(db_engine, CHAIN_ID)
    settings = chain_settings.model_copy(
        update={
            "indexer_chains": f"{CHAIN_ID}={node.url}",
            "nft_ipfs_gateway": f"{gateway}/ipfs/",
            "nft_metadata_timeout_s": 1.0,
            "nft_metadata_max_bytes": 4096,
            "nft_metadata_allow_private": True,
        }
    )
    with indexer_of(node, db_engine, settings) as indexer:
        indexer.catch_up()
    assert_projections_match(db_engine, node)
    rpc = Rpc(node.url)
    try:
        while one_pass(db_engine, settings, {CHAIN_ID: rpc}):
            pass
    finally:
        rpc.close()
    return SimpleNamespace(c=c, alice=alice.lower(), bob=bob.lower(), settings=settings)


def metadata_rows(engine: Engine) -> dict[tuple[str, int], dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM nft_metadata WHERE chain_id = :c"), {"c": CHAIN_ID}
        ).mappings()
        return {(r["contract"], int(r["token_id"])): dict(r) for r in rows}


def test_metadata_of_every_source_and_every_failure(
    world: SimpleNamespace, db_engine: Engine
) -> None:
    rows = metadata_rows(db_engine)
    c = world.c
    ape = rows[(c.ipfs721.address.lower(), 1)]
    assert (ape["status"], ape["name"], ape["token_uri"]) == ("ok", "Ape #1", "ipfs://bafyapes/1")
    assert ape["image"] == "ipfs://bafyimg/1.png"
    assert ape["image_url"] == world.settings.nft_ipfs_gateway + "bafyimg/1.png"
    assert ape["attributes"] == [{"trait_type": "fur", "value": "gold"}]
    http = rows[(c.http721.address.lower(), 7)]
    assert http["status"] == "ok" and http["content_type"] == "application/json"
    multi = rows[(c.multi.address.lower(), 3)]
    assert multi["status"] == "ok" and multi["token_uri"].endswith("0" * 63 + "3.json")
    sword = (
        rows[(c.items.address.lower(), 0)]
        if (c.items.address.lower(), 0) in rows
        else rows[(c.items.address.lower(), 1)]
    )
    assert sword["status"] == "ok" and sword["token_uri"].startswith("data:")
    assert sword["name"] == "Sword"
    assert {"trait_type": "rarity", "value": "rare"} in sword["attributes"]
    reasons = {t: rows[(c.http721.address.lower(), t)] for t in (8, 9, 10)}
    assert "timed out" in reasons[8]["reason"]
    assert "larger than 4096 bytes" in reasons[9]["reason"]
    assert "not valid JSON" in reasons[10]["reason"]
    for row in reasons.values():
        assert row["status"] == "failed" and row["attempts"] == 1
        assert row["next_attempt_at"] > row["fetched_at"]  # retried after a backoff
    due = metadata.due(db_engine, reasons[8]["fetched_at"])
    assert not [d for d in due if d[0] == CHAIN_ID]  # not before the backoff is over


def test_private_addresses_are_refused_outside_local_development(
    world: SimpleNamespace, node: Node
) -> None:
    guarded = world.settings.model_copy(update={"nft_metadata_allow_private": False})
    rpc = Rpc(node.url)
    try:

        def call(to: str, data: str) -> str | None:
            return rpc.eth_call(to, data)

        with pytest.raises(metadata.MetadataError, match=r"refused: 127\.0\.0\.1 resolves"):
            metadata.resolve(call, "erc721", world.c.http721.address.lower(), 7, guarded)
    finally:
        rpc.close()
    assert Settings(env="prod").nft_metadata_private_allowed is False
    assert Settings(env="local").nft_metadata_private_allowed is True


@pytest.fixture(scope="module")
def client(world: SimpleNamespace) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: world.settings
    with session_scope() as session:
        token = create_app_user(session, f"chain-reader-{time.time_ns()}").token
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def test_wallet_tokens_have_symbol_decimals_and_the_block(
    client: TestClient, world: SimpleNamespace, node: Node
) -> None:
    answer = client.get(f"/v1/chain/{CHAIN_ID}/wallets/{world.alice}/tokens")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (token,) = body["tokens"]
    assert token == {
        "holder": world.alice,
        "contract": world.c.token.address.lower(),
        "balance": str(4 * E18),
        "decimals": 18,
        "symbol": "STRD",
        "name": "Stride",
    }
    head = node.w3.eth.block_number
    assert body["as_of"]["indexed_block"] == head and body["as_of"]["lag_blocks"] == 0
    assert body["as_of"]["block"] <= head


def test_wallet_nfts_filter_page_and_metadata(client: TestClient, world: SimpleNamespace) -> None:
    c = world.c
    base = f"/v1/chain/{CHAIN_ID}/wallets/{world.alice}/nfts"
    everything = client.get(base, params={"limit": 200}).json()["items"]
    assert len(everything) == 2 + 4 + 1 + 1
    with get_engine().begin() as conn:
        add_collection(conn, CHAIN_ID, "Http Cats", [c.http721.address])
    cats = client.get(base, params={"collection": "Http Cats", "limit": 3}).json()
    assert [i["token_id"] for i in cats["items"]] == ["7", "8", "9"]
    assert all(i["collection"] == "Http Cats" for i in cats["items"])
    rest = client.get(base, params={"collection": "Http Cats", "cursor": cats["next_cursor"]})
    assert [i["token_id"] for i in rest.json()["items"]] == ["10"]
    assert rest.json()["next_cursor"] is None
    apes = client.get(base, params={"contract": c.ipfs721.address, "metadata": "false"}).json()
    assert [(i["token_id"], i["metadata"]) for i in apes["items"]] == [("1", None), ("2", None)]
    both = client.get(base, params={"contract": [c.ipfs721.address, c.multi.address]}).json()[
        "items"
    ]
    assert {i["standard"] for i in both} == {"erc721", "erc1155"}
    multi = next(i for i in both if i["standard"] == "erc1155")
    assert multi["amount"] == "5" and multi["metadata"]["status"] == "ok"
    missing = client.get(base, params={"collection": "Nope"})
    assert missing.status_code == 404 and "Nope" in missing.json()["detail"]
    assert client.get(base, params={"cursor": "garbage"}).status_code == 422


def test_one_nft_and_its_refresh(client: TestClient, world: SimpleNamespace) -> None:
    path = f"/v1/chain/{CHAIN_ID}/nfts/{world.c.ipfs721.address}/1"
    one = client.get(path).json()
    assert [o["holder"] for o in one["owners"]] == [world.alice]
    assert one["metadata"]["name"] == "Ape #1" and one["standard"] == "erc721"
    refused = client.post(path + "/refresh")
    assert refused.status_code == 409 and "refresh again in" in refused.json()["detail"]
    client.app.dependency_overrides[get_settings] = lambda: world.settings.model_copy(  # type: ignore[attr-defined]
        update={"nft_metadata_refresh_cooldown_s": 0}
    )
    try:
        again = client.post(path + "/refresh")
        assert again.status_code == 200 and again.json()["metadata"]["status"] == "ok"
    finally:
        client.app.dependency_overrides[get_settings] = lambda: world.settings  # type: ignore[attr-defined]
    assert client.get(f"/v1/chain/{CHAIN_ID}/nfts/{world.c.ipfs721.address}/99").status_code == 404


def test_the_chain_api_refuses_bad_input_and_anonymous_callers(
    client: TestClient, world: SimpleNamespace
) -> None:
    assert client.get(f"/v1/chain/{CHAIN_ID}/wallets/0x123/tokens").status_code == 422
    assert client.get(f"/v1/chain/999/wallets/{world.alice}/tokens").status_code == 404
    too_big = str(2**256)
    assert client.get(f"/v1/chain/{CHAIN_ID}/nfts/{world.alice}/{too_big}").status_code == 422
    anonymous = client.get(
        f"/v1/chain/{CHAIN_ID}/wallets/{world.alice}/tokens", headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401


def test_an_erc4906_metadata_update_is_fetched_again(
    world: SimpleNamespace, node: Node, gateway: str, db_engine: Engine
) -> None:
    items = world.c.items
    admin = node.w3.eth.accounts[0]
    items.functions.setBaseURI(f"{gateway}/meta/items/").transact({"from": admin})
    with indexer_of(node, db_engine, world.settings) as indexer:
        indexer.catch_up()
    contract = items.address.lower()

    def sword() -> dict:
        return next(r for (c, _), r in metadata_rows(db_engine).items() if c == contract)

    rpc = Rpc(node.url)
    try:
        wait_for(  # the projections agent applies the BatchMetadataUpdate log
            lambda: (
                bool(one_pass(db_engine, world.settings, {CHAIN_ID: rpc}) or True)
                and sword()["token_uri"].startswith(f"{gateway}/meta/items/")
            ),
            lambda: f"metadata {sword()}",
        )
    finally:
        rpc.close()
    assert sword()["status"] == "ok" and sword()["name"].startswith("Thing /meta/items/")


def test_the_signed_in_users_holdings_across_their_linked_wallets(
    client: TestClient, world: SimpleNamespace, db_engine: Engine
) -> None:
    """``/me/``: the wallets the user linked (here alice's and bob's), nobody else's."""
    with session_scope() as session:
        user = create_app_user(session, f"two-wallets-{time.time_ns()}")
    with db_engine.begin() as conn:
        for address, primary in ((world.alice, True), (world.bob, False)):
            conn.execute(
                text(
                    "INSERT INTO user_wallets (address, user_id, is_primary, kind, chain_id)"
                    " VALUES (:a, :u, :p, 'eoa', :c)"
                ),
                {"a": to_checksum_address(address), "u": user.user_id, "p": primary, "c": CHAIN_ID},
            )
    mine = {"Authorization": f"Bearer {user.token}"}
    tokens = client.get(f"/v1/chain/{CHAIN_ID}/me/tokens", headers=mine).json()["tokens"]
    assert {(t["holder"], t["balance"]) for t in tokens} == {
        (world.alice, str(4 * E18)),
        (world.bob, str(E18)),
    }
    nfts = client.get(f"/v1/chain/{CHAIN_ID}/me/nfts", params={"limit": 200}, headers=mine)
    assert {i["holder"] for i in nfts.json()["items"]} == {world.alice}
    assert len(nfts.json()["items"]) == 2 + 4 + 1 + 1
    # The client's own user linked no wallet: nothing, with the block it reflects.
    empty = client.get(f"/v1/chain/{CHAIN_ID}/me/tokens").json()
    assert empty["tokens"] == [] and empty["as_of"]["chain_id"] == CHAIN_ID
    # A game key is not a user: /me/ needs an app user's token.
    assert (
        client.get(f"/v1/chain/{CHAIN_ID}/me/nfts", headers={"Authorization": ""}).status_code
        == 401
    )
