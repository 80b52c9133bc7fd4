"""Fixtures of the wallet and player-link tests: the API behind nginx (``live_api``), a real
anvil on the port the API's settings name (so EIP-1271 checks reach it), app users and
games made with the real CLI functions, and a signer of EIP-4361 messages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from contracts.anvil import running_anvil
from contracts.artifacts import load_artifact
from core.identity.app_users import create_app_user
from core.identity.game_keys import create_game
from core.identity.siwe import SiweMessage
from core.platform.config import Settings
from core.platform.db import session_scope


@pytest.fixture(scope="session")
def chain(stack_settings: Settings) -> Iterator[Web3]:
    """anvil on STRIDE_ANVIL_PORT: the chain the API's default wallet settings accept."""
    with running_anvil(
        stack_settings.anvil_port, stack_settings.anvil_chain_id, auto_impersonate=True
    ) as url:
        w3 = Web3(Web3.HTTPProvider(url))
        # When an earlier test started the stack's own anvil on this port (`stack.up`), that
        # one answers here: let it send from any address too, as this fixture's anvil does.
        w3.provider.make_request("anvil_autoImpersonateAccount", [True])  # type: ignore[arg-type]
        yield w3


@pytest.fixture
def api(live_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_api, timeout=30) as client:
        yield client


@dataclass
class AppUser:
    user_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def new_user(db_engine: Any) -> Any:
    def make() -> AppUser:
        user_id = f"wallet-user-{uuid.uuid4().hex[:10]}"
        with session_scope() as session:
            token = create_app_user(session, user_id).token
        return AppUser(user_id, token)

    return make


@dataclass
class GameKey:
    game_id: str
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}


@pytest.fixture
def new_game(db_engine: Any) -> Any:
    def make() -> GameKey:
        game_id = f"link-{uuid.uuid4().hex[:10]}"
        with session_scope() as session:
            key = create_game(session, "Link Test", game_id=game_id)
        return GameKey(key.game_id, key.api_key)

    return make


@dataclass
class SignIn:
    """Build, sign and send EIP-4361 messages for one server."""

    api: httpx.Client
    settings: Settings

    def nonce(self, user: AppUser) -> str:
        answer = self.api.post("/v1/wallets/nonce", headers=user.auth)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["nonce"])

    def message(self, address: str, nonce: str, **overrides: Any) -> str:
        fields: dict[str, Any] = {
            "domain": self.settings.siwe_expected_domain,
            "address": address,
            "statement": "Link this wallet to my Stride account",
            "uri": self.settings.siwe_expected_uri + "/login",
            "chain_id": self.settings.anvil_chain_id,
            "nonce": nonce,
            "issued_at": datetime.now(UTC),
        }
        return SiweMessage(**(fields | overrides)).text()

    @staticmethod
    def sign(account: LocalAccount, text: str) -> str:
        return "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()

    def verify(self, user: AppUser, text: str, signature: str) -> httpx.Response:
        return self.api.post(
            "/v1/wallets/verify",
            json={"message": text, "signature": signature},
            headers=user.auth,
        )

    def link(self, user: AppUser, account: LocalAccount, **overrides: Any) -> httpx.Response:
        """A whole sign-in: a fresh nonce, a message signed by ``account``."""
        text = self.message(account.address, self.nonce(user), **overrides)
        return self.verify(user, text, self.sign(account, text))


@pytest.fixture
def sign_in(api: httpx.Client, stack_settings: Settings) -> SignIn:
    return SignIn(api, stack_settings)


def deploy_artifact(w3: Web3, name: str, *args: Any) -> str:
    """Deploy a committed artifact from anvil's first account; returns its address."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(*args).transact({"from": w3.eth.accounts[0]})
    return str(w3.eth.wait_for_transaction_receipt(tx)["contractAddress"])


def deploy_wallet(w3: Web3, owner: str) -> Contract:
    """A fresh OwnedWallet1271 owned by ``owner``."""
    address = deploy_artifact(w3, "OwnedWallet1271", owner)
    return w3.eth.contract(address=address, abi=load_artifact("OwnedWallet1271").abi)


def fund(w3: Web3, address: str, wei: int = 10**18) -> None:
    """Gas money for an account the node impersonates (``--auto-impersonate``)."""
    w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]


def new_account() -> LocalAccount:
    return Account.create()
