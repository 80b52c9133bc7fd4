"""The economy through the front door (nginx → uvicorn, real PostgreSQL), with the typed
client: studio CRUD with ETag / If-Match, /v1 and /v2 of packs side by side on the same
rows, 50 concurrent duplicate purchases over HTTP granting once, a gift flow, the error
shape of refusals."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import httpx
import pytest

from stride_client import StrideAPIError, Transport
from stride_client.economy import EconomyClient, new_key
from tests.integration.content.conftest import Economy, User

pytestmark = pytest.mark.integration


@pytest.fixture
def studio(live_api: str, economy: Economy) -> Iterator[EconomyClient]:
    with Transport(live_api, game_key=economy.api_key) as transport:
        yield EconomyClient(transport)


@pytest.fixture
def player(live_api: str, new_user: Callable[[], User]) -> Callable[[User], EconomyClient]:
    transports: list[Transport] = []

    def client(user: User) -> EconomyClient:
        transports.append(Transport(live_api, user_token=user.token))
        return EconomyClient(transports[-1])

    yield client  # type: ignore[misc]
    for t in transports:
        t.close()


def test_studio_crud_with_etags_and_a_stale_write_refused(studio: EconomyClient) -> None:
    created = studio.items.create("sword", {"name": "Sword", "stackable": False})
    assert created.etag == '"1"'
    updated = studio.items.replace(
        "sword", {"name": "Sword+", "stackable": False}, if_match=created.etag
    )
    assert (updated.value["name"], updated.etag) == ("Sword+", '"2"')
    with pytest.raises(StrideAPIError) as stale:
        studio.items.replace("sword", {"name": "Lost", "stackable": False}, if_match=created.etag)
    assert (stale.value.status_code, stale.value.code) == (412, "precondition_failed")
    assert 'its ETag is now "2"' in stale.value.detail
    with pytest.raises(StrideAPIError) as taken:
        studio.items.create("sword", {"name": "Again", "stackable": False})
    assert taken.value.status_code == 409
    studio.items.create("shield", {"name": "Shield", "stackable": True, "max_count": 5})
    assert [i["item_id"] for i in studio.items.iterate(page_size=1)] == ["shield", "sword"]
    assert [i["item_id"] for i in studio.items.list(stackable=False)[0]] == ["sword"]
    studio.items.archive("shield", if_match='"1"')
    assert [i["item_id"] for i in studio.items.list()[0]] == ["sword"]
    with pytest.raises(StrideAPIError) as invalid:
        studio.items.create("Bad Id", {"name": "x", "stackable": True})
    assert (invalid.value.status_code, invalid.value.code) == (422, "invalid")
    assert invalid.value.errors[0]["field"] == "item_id"


def test_conditional_requests_follow_rfc_9110_through_the_front_door(
    live_api: str, studio: EconomyClient, economy: Economy
) -> None:
    studio.items.create("orb", {"name": "Orb", "stackable": True})
    studio.packs.create(
        "orbs",
        {
            "name": "Orbs",
            "items": [{"item_id": "orb", "quantity": 2}],
            "price": {"amount": "1", "currency": "EUR"},
        },
    )
    studio.content.create("skin", {"kind": "unlockable", "name": "Skin"})
    studio.achievements.create("lvl-5", {"name": "Level 5", "metric": "level", "threshold": 5})
    item = "/v1/catalog/items/orb"
    spec = {"name": "Orb", "stackable": True}
    with httpx.Client(base_url=live_api, headers={"X-Api-Key": economy.api_key}) as raw:
        for path in ("/v1/catalog/content/skin", "/v1/achievements/lvl-5"):
            assert raw.get(path, headers={"If-None-Match": '"1"'}).status_code == 304
            assert raw.get(path, headers={"If-None-Match": '"2"'}).status_code == 200
        cached = raw.get(item, headers={"If-None-Match": '"1"'})
        assert (cached.status_code, cached.content, cached.headers["ETag"]) == (304, b"", '"1"')
        assert raw.get(item, headers={"If-None-Match": '"0"'}).json()["version"] == 1
        for path in ("/v2/catalog/packs/orbs", "/v1/catalog/packs/orbs"):
            unchanged = raw.get(path, headers={"If-None-Match": 'W/"1"'})
            assert unchanged.status_code == 304 and unchanged.headers["ETag"] == '"1"'
        assert "Deprecation" in unchanged.headers  # /v1 stays marked on a 304 too

        junk = raw.put(item, json=spec, headers={"If-Match": "1"})
        assert (junk.status_code, junk.json()["code"]) == (400, "bad_request")
        weak = raw.put(item, json=spec, headers={"If-Match": 'W/"1"'})
        assert (weak.status_code, weak.json()["code"]) == (412, "precondition_failed")
        assert 'its ETag is now "1"' in weak.json()["detail"]
        # Either tag form names a version; * names any; none: the last write wins.
        assert raw.put(item, json=spec, headers={"If-Match": '"r1"'}).headers["ETag"] == '"2"'
        assert raw.put(item, json=spec, headers={"If-Match": "*"}).headers["ETag"] == '"3"'
        assert raw.put(item, json=spec).headers["ETag"] == '"4"'
        assert raw.get(item, headers={"If-None-Match": '"3"'}).status_code == 200


def test_v1_and_v2_of_packs_side_by_side_on_the_same_rows(
    live_api: str, studio: EconomyClient, economy: Economy
) -> None:
    studio.items.create("gem", {"name": "Gem", "stackable": True})
    v1 = studio.packs_v1.create(
        "old",
        {
            "name": "Old",
            "items": [{"item_id": "gem", "quantity": 3}],
            "price": "4.99",
            "currency": "USD",
            "gift_allowed": False,
        },
    )
    v2 = studio.packs.create(
        "new",
        {
            "name": "New",
            "items": [{"item_id": "gem", "quantity": 9}],
            "price": {"amount": "9.99", "currency": "EUR"},
            "giftable": True,
        },
    )
    old_in_v2 = studio.packs.get("old").value
    new_in_v1 = studio.packs_v1.get("new").value
    assert old_in_v2["price"] == {"amount": "4.99", "currency": "USD"}
    assert old_in_v2["giftable"] is False
    assert (new_in_v1["price"], new_in_v1["currency"], new_in_v1["gift_allowed"]) == (
        "9.99",
        "EUR",
        True,
    )
    assert v1.value["version"] == v2.value["version"] == 1
    # A v1 write is seen by v2 readers and bumps the one version both ETags show.
    studio.packs_v1.replace(
        "new",
        {
            "name": "New",
            "items": [{"item_id": "gem", "quantity": 9}],
            "price": "7",
            "currency": "EUR",
        },
        if_match=v2.etag,
    )
    assert studio.packs.get("new").value["price"] == {"amount": "7", "currency": "EUR"}
    with httpx.Client(base_url=live_api, headers={"X-Api-Key": economy.api_key}) as raw:
        old = raw.get("/v1/catalog/packs")
        new = raw.get("/v2/catalog/packs")
    assert old.headers["Deprecation"].startswith("@")
    assert old.headers["Sunset"].endswith("GMT")
    assert old.headers["Link"] == '</v2/catalog/packs>; rel="successor-version"'
    assert "Deprecation" not in new.headers and "Sunset" not in new.headers
    with httpx.Client(base_url=live_api) as anonymous:  # refusals are deprecated answers too
        refused = anonymous.get("/v1/catalog/packs/old")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    assert refused.headers["Link"] == '</v2/catalog/packs/old>; rel="successor-version"'
    assert refused.headers["Deprecation"] == old.headers["Deprecation"]
    assert [p["pack_id"] for p in old.json()["packs"]] == [
        p["pack_id"] for p in new.json()["packs"]
    ]


def test_fifty_concurrent_duplicate_purchases_over_http_grant_once(
    studio: EconomyClient,
    player: Callable[[User], EconomyClient],
    new_user: Callable[[], User],
    economy: Economy,
) -> None:
    studio.items.create("gem", {"name": "Gem", "stackable": True})
    studio.packs.create(
        "gems",
        {
            "name": "Gems",
            "items": [{"item_id": "gem", "quantity": 10}],
            "price": {"amount": "1.99", "currency": "USD"},
        },
    )
    buyer = new_user()
    key = new_key()
    barrier = Barrier(50)

    def buy(_i: int) -> tuple[str, bool]:
        client = player(buyer)
        barrier.wait()
        grant = client.packs.purchase("gems", game_id=economy.game_id, idempotency_key=key)
        return grant["grant_id"], grant["created"]

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(buy, range(50)))

    assert len({g for g, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    mine = player(buyer).inventory.mine(economy.game_id)
    assert [(s["item_id"], s["quantity"]) for s in mine["items"]] == [("gem", 10)]
    assert studio.inventory.of_user(buyer.user_id)["items"] == mine["items"]
    assert studio.packs.get("gems").value["stock_sold"] == 0  # unlimited: not counted


def test_buy_as_a_gift_then_give_it_on_accept_with_history(
    studio: EconomyClient,
    player: Callable[[User], EconomyClient],
    new_user: Callable[[], User],
    economy: Economy,
) -> None:
    g = economy.game_id
    studio.items.create("rose", {"name": "Rose", "stackable": True})
    studio.packs.create(
        "roses",
        {
            "name": "Roses",
            "items": [{"item_id": "rose", "quantity": 3}],
            "price": {"amount": "2", "currency": "USD"},
        },
    )
    alice, bob, carol = new_user(), new_user(), new_user()
    grant = player(carol).packs.purchase(
        "roses", game_id=g, idempotency_key=new_key(), recipient_user_id=alice.user_id
    )
    assert (grant["owner_id"], grant["unlocked_by"], grant["recipient_user_id"]) == (
        alice.user_id,
        carol.user_id,
        alice.user_id,
    )
    gift = player(alice).gifts.offer(
        game_id=g,
        recipient_user_id=bob.user_id,
        item_id="rose",
        quantity=2,
        idempotency_key=new_key(),
    )
    assert [x["gift_id"] for x in player(bob).gifts.list(g, status="offered")] == [gift["gift_id"]]
    with pytest.raises(StrideAPIError) as not_yours:
        player(carol).gifts.accept(gift["gift_id"])
    assert not_yours.value.status_code == 403
    assert player(bob).gifts.accept(gift["gift_id"])["status"] == "accepted"
    assert player(bob).inventory.mine(g)["items"] == [
        {
            **player(bob).inventory.mine(g)["items"][0],
            "item_id": "rose",
            "quantity": 2,
            "unlocked_by": carol.user_id,
        }
    ]
    history = player(alice).inventory.history(g)
    assert [(e["reason"], e["delta"]) for e in history] == [("granted", 3), ("gift_offered", -2)]
    with pytest.raises(StrideAPIError) as closed:
        player(bob).gifts.decline(gift["gift_id"])
    assert (closed.value.status_code, closed.value.code) == (409, "gift_closed")


def test_credentials_are_checked_per_route(
    live_api: str, economy: Economy, new_user: Callable[[], User]
) -> None:
    user = new_user()
    with httpx.Client(base_url=live_api) as raw:
        assert raw.get("/v1/catalog/items").status_code == 401
        as_user = {"Authorization": f"Bearer {user.token}"}
        # an app user may read the catalog of a game it names, never write it
        assert (
            raw.get(
                "/v1/catalog/items", params={"game_id": economy.game_id}, headers=as_user
            ).status_code
            == 200
        )
        assert raw.post("/v1/catalog/items", json={}, headers=as_user).status_code == 401
        missing_key = raw.post(
            "/v2/catalog/packs/nope/purchase", json={"game_id": economy.game_id}, headers=as_user
        )
        assert missing_key.status_code == 422
        assert missing_key.json()["errors"][0]["field"] == "Idempotency-Key"
        unknown = raw.post(
            "/v2/catalog/packs/nope/purchase",
            json={"game_id": economy.game_id},
            headers={**as_user, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


def test_the_cli_runs_the_catalog_and_a_purchase_against_the_api(
    live_api: str, economy: Economy, new_user: Callable[[], User], tmp_path
) -> None:
    from typer.testing import CliRunner

    from cli.main import app as content  # `stride`: the economy's groups are in `content`

    runner = CliRunner()
    studio = ["content", "--api-url", live_api, "--key", economy.api_key]

    def run(*args: str) -> str:
        result = runner.invoke(content, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    run(*studio, "catalog", "items", "create", "gem", '{"name": "Gem", "stackable": true}')
    spec = tmp_path / "gem.json"
    spec.write_text('{"name": "Shiny gem", "stackable": true, "max_count": 99}')
    assert 'ETag "2"' in run(*studio, "catalog", "items", "update", "gem", "--file", str(spec))
    assert "Shiny gem" in run(*studio, "catalog", "items", "list")
    pack = (
        '{"name": "Gems", "items": [{"item_id": "gem", "quantity": 4}],'
        ' "price": {"amount": "1", "currency": "USD"}}'
    )
    run(*studio, "packs", "create", "gems", pack)
    stale = runner.invoke(
        content,
        [*studio, "catalog", "items", "update", "gem", "--file", str(spec), "--if-match", '"1"'],
    )
    assert stale.exit_code == 1 and "precondition_failed" in stale.output

    buyer = new_user()
    player = ["content", "--api-url", live_api, "--token", buyer.token]
    run(*player, "packs", "buy", "gems", "--game", economy.game_id, "--key", "cli-key-0001")
    again = run(*player, "packs", "buy", "gems", "--game", economy.game_id, "--key", "cli-key-0001")
    assert '"created": false' in again
    shown = run(*player, "inventory", "show", "--game", economy.game_id)
    assert "gem" in shown and " 4 " in shown
