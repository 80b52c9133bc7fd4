"""``stride demo --web3``: the app's write flows against the local stack, step by step.

Two app users sign in with local test keys (EIP-4361 through ``/v1/wallets``) and link a
player of a demo game. The second wins matches (``POST /v1/events``): the scoring agent
issues mint commands, the chain writer mints the tokens to the wallet (shown through the
balances API); they buy a pack priced in the token (held, ``awaiting_payment``), sign its
EIP-2612 permit here, the writer burns it, and the items land in the inventory. The first
stakes a StrideItems NFT in the vault and claims its rewards, unstakes and lists it; the
second buys it with the tokens it earned; then the first bridges tokens to the other chain
when one is configured. Every step prints its transaction and the balances after it. The
operator's own steps (minting the item, funding the vault's rewards) use the local chain's
unlocked dev account.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from rich.console import Console
from sqlalchemy import text
from web3 import Web3
from web3.types import RPCEndpoint

from contracts.deploy import Deployment, load_deployment
from contracts.node import TxSender
from core.identity.app_users import create_app_user
from core.identity.game_keys import create_game
from core.identity.siwe import SiweMessage
from core.platform.config import Settings
from core.platform.db import session_scope

E18 = 10**18
FOLLOW_TIMEOUT_S = 60.0
DEMO_WINS = 2  # matches won by the buyer: STRIDE_REWARD_MINT_PER_WIN tokens each


class DemoError(RuntimeError):
    """A step of the demo could not go on; the message says what to do."""


class Web3Demo:
    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.chain_id = settings.anvil_chain_id
        self.w3 = Web3(Web3.HTTPProvider(settings.evm_url))
        deployment = load_deployment(self.chain_id, settings.deployments_dir)
        if deployment is None:
            raise DemoError(
                f"no Stride contracts recorded for chain {self.chain_id} in "
                f"{settings.deployments_dir}: run `stride up anvil`"
            )
        self.deployment: Deployment = deployment
        self.c = {
            name: deployment.contract(self.w3, name)
            for name in ("StrideToken", "StrideItems", "OmnibusVault", "StrideMarketplace")
        }
        self.operator = TxSender.dev_account(self.w3)
        self.api = httpx.Client(base_url=settings.api_url, timeout=30)

    # ---- users and their wallets -----------------------------------------------------------

    def user(self, name: str) -> dict[str, Any]:
        """A new app user whose new local key signs in (EIP-4361) and links its wallet."""
        account = Account.create()
        user_id = f"web3-demo-{name}-{uuid.uuid4().hex[:6]}"
        with session_scope() as session:
            token = create_app_user(session, user_id).token
        headers = {"Authorization": f"Bearer {token}"}
        nonce = self._ok(self.api.post("/v1/wallets/nonce", headers=headers), 201)["nonce"]
        text = SiweMessage(
            domain=self.settings.siwe_expected_domain,
            address=account.address,
            statement="Link this wallet to my Stride account",
            uri=self.settings.siwe_expected_uri + "/login",
            chain_id=self.chain_id,
            nonce=nonce,
            issued_at=datetime.now(UTC),
        ).text()
        signature = "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()
        self._ok(
            self.api.post(
                "/v1/wallets/verify",
                json={"message": text, "signature": signature},
                headers=headers,
            ),
            200,
        )
        # gas money: a local dev chain only
        self.w3.provider.make_request(
            RPCEndpoint("anvil_setBalance"), [account.address, hex(10 * E18)]
        )
        self.console.print(f"[bold]{name}[/] signed in: user {user_id}, wallet {account.address}")
        return {"name": name, "account": account, "headers": headers}

    # ---- one write flow ---------------------------------------------------------------------

    def act(self, user: dict[str, Any], kind: str, **body: Any) -> dict[str, Any]:
        """Prepare (simulated by the API), sign here, send, submit, follow to the end."""
        path = f"/v1/chain/{self.chain_id}/actions/{kind}"
        action = self._ok(self.api.post(path, json=body, headers=user["headers"]), 201)
        self.console.print(f"[bold cyan]{user['name']}: {kind}[/] — {action['summary']}")
        for split in action["quote"]:
            self.console.print(
                f"  price {self._stride(split['price'])}: fee {self._stride(split['fee'])}, "
                f"royalty {self._stride(split['royalty'])} to {split['royalty_receiver']}, "
                f"seller receives {self._stride(split['seller_receives'])}"
            )
        for approval in action["approvals"]:
            tx_hash = self._send(user["account"], approval["transaction"])
            self.console.print(f"  approval: {approval['description']} — tx {tx_hash}")
        tx_hash = self._send(user["account"], action["transaction"])
        self._ok(
            self.api.post(
                f"/v1/actions/{action['id']}/submitted",
                json={"tx_hash": tx_hash},
                headers=user["headers"],
            ),
            200,
        )
        deadline = time.monotonic() + FOLLOW_TIMEOUT_S
        while True:
            state = self._ok(self.api.get(f"/v1/actions/{action['id']}", headers=user["headers"]))
            if state["status"] in ("confirmed", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # polling the action's status, bounded by the deadline
        where = f"block {state['block_number']}" if state["block_number"] is not None else ""
        self.console.print(f"  tx {tx_hash}: [bold]{state['status']}[/] {where}")
        if state["status"] == "failed":
            raise DemoError(f"{kind} failed on chain: {state['reason']}")
        if state.get("destination"):
            leg = state["destination"]
            self.console.print(
                f"  chain {leg['chain_id']}: {leg['status']} (tx {leg['tx_hash'] or '-'})"
            )
        return state

    # ---- play to earn: mint, then a pack paid by burning ---------------------------------

    def game(self, *users: dict[str, Any]) -> dict[str, str]:
        """A demo game; each user links a player of it (link code, redeemed by the game)."""
        with session_scope() as session:
            made = create_game(session, "Web3 demo", f"web3-{uuid.uuid4().hex[:8]}")
        key = {"X-Api-Key": made.api_key}
        for user in users:
            code = self._ok(
                self.api.post(
                    "/v1/players/link-codes",
                    json={"game_id": made.game_id},
                    headers=user["headers"],
                ),
                201,
            )["code"]
            player = f"{user['name']}-{uuid.uuid4().hex[:4]}"
            self._ok(
                self.api.post(
                    "/v1/players/link", json={"code": code, "player_id": player}, headers=key
                )
            )
            user["player"] = player
        self.console.print(f"game {made.game_id}: players linked to their users")
        return {"game_id": made.game_id, **key}

    def win_matches(self, game: dict[str, str], user: dict[str, Any], wins: int) -> None:
        """The game server posts won matches; the writer mints the reward to the wallet."""
        key = {"X-Api-Key": game["X-Api-Key"]}
        token = self.c["StrideToken"]
        before = int(token.functions.balanceOf(user["account"].address).call())
        expected = before + wins * int(self.settings.reward_mint_per_win * E18)
        for _ in range(wins):
            event = {
                "event_id": str(uuid.uuid4()),
                "player_id": user["player"],
                "type": "match_result",
                "payload": {"outcome": "win", "score": 100},
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            self._ok(self.api.post("/v1/events", json=event, headers=key), 202)
        self.console.print(f"[bold cyan]{user['name']}: won {wins} matches[/] (POST /v1/events)")
        self._until(
            "the writer's mint",
            lambda: int(token.functions.balanceOf(user["account"].address).call()) >= expected,
        )
        self._mint_txs(user)
        # The balances API reads the indexer's projection of the chain's Transfer logs.
        path = f"/v1/chain/{self.chain_id}/me/tokens"
        self._until(
            "the balances API to show the mint (the indexer and the worker)",
            lambda: self._api_balance(path, user) >= expected,
        )
        shown = self._stride(self._api_balance(path, user))
        self.console.print(f"  minted by the chain writer; balances API: {shown}")

    def _api_balance(self, path: str, user: dict[str, Any]) -> int:
        tokens = self._ok(self.api.get(path, headers=user["headers"]))["tokens"]
        address = self.c["StrideToken"].address.lower()
        return sum(int(t["balance"]) for t in tokens if t["contract"].lower() == address)

    def _mint_txs(self, user: dict[str, Any]) -> None:
        with session_scope() as session:
            rows = session.execute(
                text(
                    "SELECT DISTINCT t.mined_tx_hash FROM reward_commands c "
                    "JOIN reward_executions e USING (command_id) "
                    "JOIN chain_txs t ON t.id = e.chain_tx_id "
                    "WHERE c.player_id = :p AND c.action = 'mint' AND c.status = 'confirmed'"
                ),
                {"p": user["player"]},
            ).scalars()
            for tx_hash in rows:
                self.console.print(f"  mint tx {tx_hash}")

    def buy_pack(self, game: dict[str, str], user: dict[str, Any], price: int) -> None:
        """A pack priced in the token: held until the user's signed permit is burned."""
        key = {"X-Api-Key": game["X-Api-Key"]}
        item = f"banner-{uuid.uuid4().hex[:4]}"
        self._ok(
            self.api.post(
                "/v1/catalog/items",
                json={"item_id": item, "name": "Banner", "stackable": True},
                headers=key,
            ),
            201,
        )
        pack = {
            "pack_id": f"{item}-pack",
            "name": "Banner pack",
            "items": [{"item_id": item, "quantity": 3}],
            "price": {"amount": str(price), "currency": self.settings.reward_token},
        }
        self._ok(self.api.post("/v2/catalog/packs", json=pack, headers=key), 201)
        grant = self._ok(
            self.api.post(
                f"/v2/catalog/packs/{pack['pack_id']}/purchase",
                json={"game_id": game["game_id"]},
                headers={**user["headers"], "Idempotency-Key": f"demo-{uuid.uuid4()}"},
            ),
            201,
        )
        burn = grant["burn_command_id"]
        self.console.print(
            f"[bold cyan]{user['name']}: buys {pack['pack_id']} for {price} "
            f"{self.settings.reward_token}[/] — {grant['payment_state']}, sign at "
            f"{grant['authorize_url']}"
        )
        path = f"/v1/purchases/{burn}"
        self._until(
            "the burn to need its permit",
            lambda: (
                self._ok(self.api.get(path, headers=user["headers"]))["status"]
                == "needs_authorization"
            ),
        )
        typed = self._ok(self.api.post(f"{path}/intent", headers=user["headers"]))["typed_data"]
        signed = Account.sign_typed_data(user["account"].key, full_message=typed)
        body = {
            "owner": user["account"].address,
            "nonce": typed["message"]["nonce"],
            "deadline": typed["message"]["deadline"],
            "signature": "0x" + bytes(signed.signature).hex(),
        }
        self._ok(self.api.post(f"{path}/authorization", json=body, headers=user["headers"]), 202)
        self.console.print("  permit signed by the wallet (EIP-2612) and posted")
        done: dict[str, Any] = {}

        def finished() -> bool:
            done.update(self._ok(self.api.get(path, headers=user["headers"])))
            return done["status"] in ("confirmed", "failed")

        self._until("the writer's burn", finished)
        self.console.print(
            f"  burn tx {done['tx_hash']}: [bold]{done['status']}[/] block {done['block_number']}"
        )
        if done["status"] == "failed":
            raise DemoError(f"the burn failed: {done['reason']}")
        self._until(
            "the items",
            lambda: (
                self._ok(
                    self.api.get(
                        "/v1/inventory",
                        params={"game_id": game["game_id"]},
                        headers=user["headers"],
                    )
                )["items"]
                != []
            ),
        )
        stacks = self._ok(
            self.api.get(
                "/v1/inventory", params={"game_id": game["game_id"]}, headers=user["headers"]
            )
        )["items"]
        shown = ", ".join(f"{s['quantity']} x {s['item_id']}" for s in stacks)
        self.console.print(f"  inventory: {shown}")

    def _until(self, what: str, done: Any) -> None:
        deadline = time.monotonic() + FOLLOW_TIMEOUT_S
        while not done():
            if time.monotonic() > deadline:
                raise DemoError(
                    f"waited {FOLLOW_TIMEOUT_S:.0f} s for {what}: is the stack up with its "
                    "worker and writer (`stride status`)?"
                )
            time.sleep(0.5)  # polling the API, bounded by the deadline

    # ---- the story -------------------------------------------------------------------------

    def run(self) -> None:
        token, items = self.c["StrideToken"], self.c["StrideItems"]
        vault, market = self.c["OmnibusVault"], self.c["StrideMarketplace"]
        alice, bob = self.user("alice"), self.user("bob")
        game = self.game(alice, bob)
        self.win_matches(game, bob, DEMO_WINS)
        self.balances(alice, bob)
        self.buy_pack(game, bob, price=2)
        self.balances(alice, bob)
        item = int(items.functions.nextTokenId().call())
        self.operator.call(
            items.functions.mint(alice["account"].address, "Demo boots", "ipfs://boots", [])
        )
        self.console.print(f"operator minted item {item} to alice")
        self.act(alice, "stake-nft", token_id=str(item))
        rewards = 100 * E18
        self.operator.call(token.functions.mint(self.operator.address, rewards))
        self.operator.call(token.functions.approve(vault.address, rewards))
        self.operator.call(vault.functions.notifyRewardAmount(rewards, 3_600))
        self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [600])
        self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        self.console.print("operator streams 100 STRIDE of rewards over an hour; 10 min pass")
        self.act(alice, "claim")
        self.balances(alice, bob)
        self.act(alice, "unstake-nft", token_id=str(item))
        self.act(alice, "list", token_id=str(item), price=str(10 * E18))
        listing_id = int(market.functions.listingCount().call())
        self.act(bob, "buy", listing_id=str(listing_id))
        owner = items.functions.ownerOf(item).call()
        self.console.print(f"item {item} now belongs to {owner} (bob)")
        self.balances(alice, bob)
        self.bridge(alice)

    def bridge(self, user: dict[str, Any]) -> None:
        peers = [
            p
            for p in self.deployment.config.get("bridge_peers", [])
            if p in self.settings.indexed_chains
            and load_deployment(p, self.settings.deployments_dir) is not None
        ]
        if not peers:
            self.console.print(
                "[yellow]bridge skipped:[/] no peer chain of this bridge is configured "
                "(deploy to a second chain with `stride contracts deploy`, add it to "
                "STRIDE_INDEXER_CHAINS and run `stride bridge relay`)"
            )
            return
        self.act(user, "bridge", amount=str(E18), destination_chain_id=peers[0])

    def balances(self, *users: dict[str, Any]) -> None:
        token = self.c["StrideToken"]
        shown = ", ".join(
            f"{u['name']} {self._stride(token.functions.balanceOf(u['account'].address).call())}"
            for u in users
        )
        self.console.print(f"  balances: {shown}")

    # ---- plumbing ----------------------------------------------------------------------------

    def _send(self, account: LocalAccount, tx: dict[str, Any]) -> str:
        signed = account.sign_transaction(
            {
                "type": 2,
                "chainId": int(tx["chainId"], 16),
                "to": tx["to"],
                "data": tx["data"],
                "value": int(tx["value"], 16),
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "gas": int(tx["gas"], 16),
                "maxFeePerGas": int(tx["maxFeePerGas"], 16),
                "maxPriorityFeePerGas": int(tx["maxPriorityFeePerGas"], 16),
            }
        )
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self.w3.eth.wait_for_transaction_receipt(tx_hash)
        return "0x" + tx_hash.hex().removeprefix("0x")

    @staticmethod
    def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
        if response.status_code != status:
            raise DemoError(f"{response.request.url.path}: {response.status_code} {response.text}")
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def _stride(amount: str | int) -> str:
        whole, frac = divmod(int(amount), E18)
        return (f"{whole}.{frac:018d}".rstrip("0").rstrip(".")) + " STRIDE"


def run_web3_demo(settings: Settings, console: Console) -> None:
    """Run the write flows' demo against the local stack (`stride up` first)."""
    demo = Web3Demo(settings, console)
    try:
        demo.run()
    finally:
        demo.api.close()
