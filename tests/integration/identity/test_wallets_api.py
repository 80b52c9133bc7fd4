"""Wallet sign-in through the front door: EOA and EIP-1271 (a real contract wallet on a real
anvil) sign-ins link the wallet; every faulty message, a replay, a wallet of another user
are refused with their status and code; primary changes and unlinks are audited."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from web3 import Web3

from api.errors import status_of
from cli.stack import free_port
from core.identity.wallets import ChainUnavailable, JsonRpcEip1271
from tests.integration.identity.conftest import (
    SignIn,
    deploy_artifact,
    deploy_wallet,
    fund,
    new_account,
)


def _refused(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code, body
    assert set(body) == {"detail", "code", "errors"} and body["detail"]
    return body


def _audit(db_engine: Engine, user_id: str) -> list[tuple[str, str]]:
    with db_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, subject FROM link_audit_log WHERE user_id = :u ORDER BY id"),
            {"u": user_id},
        )
        return [(row.action, row.subject) for row in rows]


def test_an_eoa_sign_in_links_the_wallet_as_primary(
    sign_in: SignIn, new_user: Any, api: httpx.Client, db_engine: Engine
) -> None:
    user, account = new_user(), new_account()
    nonce = sign_in.api.post("/v1/wallets/nonce", headers=user.auth)
    assert nonce.status_code == 201
    issued = nonce.json()
    assert len(issued["nonce"]) >= 8 and issued["nonce"].isalnum()
    assert issued["domain"] == sign_in.settings.siwe_expected_domain
    assert issued["chain_ids"] == [sign_in.settings.anvil_chain_id]

    message = sign_in.message(account.address, issued["nonce"])
    answer = sign_in.verify(user, message, sign_in.sign(account, message))
    assert answer.status_code == 200, answer.text
    linked = answer.json()
    assert linked["address"] == account.address
    assert (linked["kind"], linked["is_primary"], linked["created"]) == ("eoa", True, True)

    listed = api.get("/v1/wallets", headers=user.auth).json()
    assert listed["primary"] == account.address
    assert [w["address"] for w in listed["wallets"]] == [account.address]
    assert _audit(db_engine, user.user_id) == [("wallet_linked", account.address)]

    # The same message again is a replay, whoever sends it.
    replay = sign_in.verify(user, message, sign_in.sign(account, message))
    _refused(replay, 409, "siwe_nonce_used")
    # Signing in again with a new nonce is fine and changes nothing.
    again = sign_in.link(user, account)
    assert again.status_code == 200 and again.json()["created"] is False
    assert _audit(db_engine, user.user_id) == [("wallet_linked", account.address)]
    # Newer nonces do not push a used one out: the old message is still a replay.
    _refused(sign_in.verify(user, message, sign_in.sign(account, message)), 409, "siwe_nonce_used")


def test_a_contract_wallet_signs_in_with_eip1271(
    chain: Web3, sign_in: SignIn, new_user: Any, api: httpx.Client
) -> None:
    user, owner, stranger = new_user(), new_account(), new_account()
    wallet = deploy_wallet(chain, owner.address)

    nonce = sign_in.nonce(user)
    message = sign_in.message(wallet.address, nonce)
    # Somebody else's key: the contract says no.
    _refused(
        sign_in.verify(user, message, sign_in.sign(stranger, message)), 403, "siwe_bad_signature"
    )
    # The owner's key: the contract says yes (and the refused attempt did not use the nonce).
    answer = sign_in.verify(user, message, sign_in.sign(owner, message))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["address"], answer.json()["kind"]) == (wallet.address, "contract")

    # The wallet changes hands: the old owner's signature no longer proves it.
    new_owner = new_account()
    fund(chain, owner.address)
    tx = wallet.functions.setOwner(new_owner.address).transact({"from": owner.address})
    chain.eth.wait_for_transaction_receipt(tx)
    later = sign_in.message(wallet.address, sign_in.nonce(user))
    _refused(sign_in.verify(user, later, sign_in.sign(owner, later)), 403, "siwe_bad_signature")
    assert sign_in.verify(user, later, sign_in.sign(new_owner, later)).status_code == 200

    # An address without code is no contract wallet: a signature of another key is refused.
    plain = new_account()
    text_ = sign_in.message(plain.address, sign_in.nonce(user))
    _refused(sign_in.verify(user, text_, sign_in.sign(owner, text_)), 403, "siwe_bad_signature")
    # A contract that is no wallet (no isValidSignature: the call reverts) proves nothing.
    not_a_wallet = deploy_artifact(chain, "ReentrantReceiver")
    text_ = sign_in.message(not_a_wallet, sign_in.nonce(user))
    _refused(sign_in.verify(user, text_, sign_in.sign(owner, text_)), 403, "siwe_bad_signature")
    assert [w["kind"] for w in api.get("/v1/wallets", headers=user.auth).json()["wallets"]] == [
        "contract"
    ]


def test_a_chain_node_that_does_not_answer_is_a_503_not_a_refusal() -> None:
    oracle = JsonRpcEip1271({31337: f"http://127.0.0.1:{free_port()}"}, timeout_s=2)
    with pytest.raises(ChainUnavailable) as caught:
        oracle.is_valid_signature(31337, new_account().address, b"\0" * 32, b"\1" * 65)
    assert status_of(caught.value) == 503
    assert oracle.is_valid_signature(1, new_account().address, b"\0" * 32, b"") is False


def _ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def _ahead(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


# What each faulty message overrides (computed when the test runs), and its refusal.
FAULTS: list[tuple[Any, int, str]] = [
    (lambda: {"domain": "evil.example"}, 422, "siwe_wrong_domain"),
    (lambda: {"uri": "https://evil.example/login"}, 422, "siwe_wrong_uri"),
    (lambda: {"chain_id": 1}, 422, "siwe_wrong_chain"),
    (lambda: {"expiration_time": _ago(minutes=5)}, 422, "siwe_expired"),
    (lambda: {"issued_at": _ago(hours=2)}, 422, "siwe_expired"),
    (lambda: {"not_before": _ahead(minutes=5)}, 422, "siwe_not_yet_valid"),
    (lambda: {"issued_at": _ahead(minutes=5)}, 422, "siwe_issued_in_future"),
    (lambda: {"nonce": "unknownnonce1234"}, 422, "siwe_nonce_unknown"),
]


@pytest.mark.parametrize(("overrides", "status", "code"), FAULTS, ids=[f[2] for f in FAULTS])
def test_each_faulty_message_is_refused_and_links_nothing(
    sign_in: SignIn, new_user: Any, api: httpx.Client, overrides: Any, status: int, code: str
) -> None:
    user, account = new_user(), new_account()
    nonce = sign_in.nonce(user)
    message = sign_in.message(account.address, **({"nonce": nonce} | overrides()))
    _refused(sign_in.verify(user, message, sign_in.sign(account, message)), status, code)
    assert api.get("/v1/wallets", headers=user.auth).json()["wallets"] == []
    # The nonce was not used up by the refusal: a good message with it still links.
    good = sign_in.message(account.address, nonce)
    assert sign_in.verify(user, good, sign_in.sign(account, good)).status_code == 200


def test_malformed_messages_and_signatures_are_refused(sign_in: SignIn, new_user: Any) -> None:
    user, account, other = new_user(), new_account(), new_account()
    nonce = sign_in.nonce(user)
    message = sign_in.message(account.address, nonce)
    lower = message.replace(account.address, account.address.lower())
    _refused(sign_in.verify(user, lower, sign_in.sign(account, lower)), 422, "siwe_malformed")
    no_version = message.replace("Version: 1\n", "")
    _refused(
        sign_in.verify(user, no_version, sign_in.sign(account, no_version)), 422, "siwe_malformed"
    )
    _refused(sign_in.verify(user, message, sign_in.sign(other, message)), 403, "siwe_bad_signature")
    _refused(sign_in.verify(user, message, "0x" + "00" * 65), 403, "siwe_bad_signature")
    # A body that is not the right shape is the API's usual 422 with the field named.
    answer = sign_in.api.post(
        "/v1/wallets/verify", json={"message": message, "signature": "nothex"}, headers=user.auth
    )
    body = _refused(answer, 422, "invalid")
    assert body["errors"][0]["field"] == "signature"


def test_a_nonce_belongs_to_its_user_and_expires(
    sign_in: SignIn, new_user: Any, db_engine: Engine
) -> None:
    alice, bob, account = new_user(), new_user(), new_account()
    alices = sign_in.nonce(alice)
    message = sign_in.message(account.address, alices)
    _refused(
        sign_in.verify(bob, message, sign_in.sign(account, message)), 422, "siwe_nonce_unknown"
    )
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE wallet_nonces SET expires_at = now() - interval '1 second' WHERE nonce = :n"
            ),
            {"n": alices},
        )
    _refused(
        sign_in.verify(alice, message, sign_in.sign(account, message)), 422, "siwe_nonce_expired"
    )


def test_unused_nonces_per_user_are_bounded(
    sign_in: SignIn, new_user: Any, db_engine: Engine
) -> None:
    user, account = new_user(), new_account()
    keep = sign_in.settings.wallet_max_nonces_per_user
    nonces = [sign_in.nonce(user) for _ in range(keep + 2)]
    with db_engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM wallet_nonces WHERE user_id = :u"), {"u": user.user_id}
        ).scalar_one()
    assert stored == keep
    oldest = sign_in.message(account.address, nonces[0])
    _refused(sign_in.verify(user, oldest, sign_in.sign(account, oldest)), 422, "siwe_nonce_unknown")
    newest = sign_in.message(account.address, nonces[-1])
    assert sign_in.verify(user, newest, sign_in.sign(account, newest)).status_code == 200


def test_a_wallet_belongs_to_one_user(
    sign_in: SignIn, new_user: Any, api: httpx.Client, db_engine: Engine
) -> None:
    alice, bob, account = new_user(), new_user(), new_account()
    assert sign_in.link(alice, account).status_code == 200
    nonce = sign_in.nonce(bob)
    message = sign_in.message(account.address, nonce)
    _refused(
        sign_in.verify(bob, message, sign_in.sign(account, message)),
        409,
        "wallet_linked_to_another_user",
    )
    assert api.get("/v1/wallets", headers=bob.auth).json()["wallets"] == []
    # Bob cannot unlink or promote Alice's wallet: for him it does not exist.
    _refused(
        api.delete(f"/v1/wallets/{account.address}", headers=bob.auth), 404, "wallet_not_found"
    )
    _refused(
        api.post(f"/v1/wallets/{account.address}/primary", headers=bob.auth),
        404,
        "wallet_not_found",
    )
    # Once Alice unlinks it, Bob can link it (his refused attempt left his nonce unused).
    assert api.delete(f"/v1/wallets/{account.address}", headers=alice.auth).status_code == 200
    assert sign_in.verify(bob, message, sign_in.sign(account, message)).status_code == 200
    assert _audit(db_engine, alice.user_id) == [
        ("wallet_linked", account.address),
        ("wallet_unlinked", account.address),
    ]


def test_primary_and_unlink(
    sign_in: SignIn, new_user: Any, api: httpx.Client, db_engine: Engine
) -> None:
    user = new_user()
    first, second, third = new_account(), new_account(), new_account()
    for account in (first, second, third):
        assert sign_in.link(user, account).status_code == 200

    def wallets() -> dict[str, Any]:
        return dict(api.get("/v1/wallets", headers=user.auth).json())

    assert wallets()["primary"] == first.address
    # Any case of the address names the wallet.
    promoted = api.post(f"/v1/wallets/{second.address.lower()}/primary", headers=user.auth)
    assert promoted.status_code == 200 and promoted.json()["is_primary"] is True
    listed = wallets()
    assert listed["primary"] == second.address
    assert listed["wallets"][0]["address"] == second.address
    assert sum(w["is_primary"] for w in listed["wallets"]) == 1
    # Promoting the primary again changes nothing and audits nothing.
    assert api.post(f"/v1/wallets/{second.address}/primary", headers=user.auth).status_code == 200

    # Unlinking the primary promotes the most recently linked other wallet.
    gone = api.delete(f"/v1/wallets/{second.address}", headers=user.auth)
    assert gone.json() == {"unlinked": second.address, "primary": third.address}
    gone = api.delete(f"/v1/wallets/{first.address}", headers=user.auth)
    assert gone.json() == {"unlinked": first.address, "primary": third.address}
    gone = api.delete(f"/v1/wallets/{third.address}", headers=user.auth)
    assert gone.json() == {"unlinked": third.address, "primary": None}
    assert wallets() == {"wallets": [], "primary": None}
    _refused(api.delete(f"/v1/wallets/{third.address}", headers=user.auth), 404, "wallet_not_found")
    _refused(
        api.delete("/v1/wallets/0x" + "zz" * 20, headers=user.auth),
        422,
        "invalid_address",
    )

    assert _audit(db_engine, user.user_id) == [
        ("wallet_linked", first.address),
        ("wallet_linked", second.address),
        ("wallet_linked", third.address),
        ("wallet_primary_set", second.address),
        ("wallet_unlinked", second.address),
        ("wallet_primary_set", third.address),
        ("wallet_unlinked", first.address),
        ("wallet_unlinked", third.address),
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/wallets/nonce"),
        ("POST", "/v1/wallets/verify"),
        ("GET", "/v1/wallets"),
        ("POST", "/v1/wallets/0x0000000000000000000000000000000000000001/primary"),
        ("DELETE", "/v1/wallets/0x0000000000000000000000000000000000000001"),
    ],
)
def test_every_wallet_route_needs_the_app_users_token(
    api: httpx.Client, method: str, path: str
) -> None:
    _refused(api.request(method, path, json={}), 401, "unauthorized")
    answer = api.request(method, path, json={}, headers={"Authorization": "Bearer su_wrong"})
    _refused(answer, 403, "forbidden")


def test_concurrent_verifications_of_one_message_link_once(
    sign_in: SignIn, new_user: Any, live_api: str, db_engine: Engine
) -> None:
    user, account = new_user(), new_account()
    message = sign_in.message(account.address, sign_in.nonce(user))
    signature = sign_in.sign(account, message)

    def verify(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_api, timeout=30) as client:
            return client.post(
                "/v1/wallets/verify",
                json={"message": message, "signature": signature},
                headers=user.auth,
            )

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(verify, range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409, 409, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"siwe_nonce_used"}
    assert _audit(db_engine, user.user_id) == [("wallet_linked", account.address)]


def test_two_users_racing_for_one_wallet_one_wins(
    sign_in: SignIn, new_user: Any, live_api: str
) -> None:
    account = new_account()
    users = [new_user() for _ in range(4)]
    signed = []
    for user in users:
        message = sign_in.message(account.address, sign_in.nonce(user))
        signed.append((user, message, sign_in.sign(account, message)))

    def verify(entry: tuple[Any, str, str]) -> httpx.Response:
        user, message, signature = entry
        with httpx.Client(base_url=live_api, timeout=30) as client:
            return client.post(
                "/v1/wallets/verify",
                json={"message": message, "signature": signature},
                headers=user.auth,
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(verify, signed))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    losers = {a.json()["code"] for a in answers if a.status_code == 409}
    assert losers == {"wallet_linked_to_another_user"}
