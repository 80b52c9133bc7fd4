"""Pure edges of the metrics domain: the market-data adapter on a recorded response, the
generated Alertmanager configuration, webhook URL validation, the catalog."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from core.metrics.alertmanager import Route, alertmanager_config
from core.metrics.catalog import collection_member, market_pairs, token_member, wanted_metrics
from core.metrics.contracts import METRIC_KEY_PATTERN
from core.metrics.market import KlinesMarketData, parse_klines
from core.metrics.subscriptions import validate_webhook_url
from core.platform.config import Settings
from core.platform.errors import Invalid

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "metrics" / "klines_btcusdt_1m.json"
MINUTE = datetime.fromtimestamp(1764590400, UTC)


def test_klines_adapter_reads_the_recorded_minute() -> None:
    seen: list[httpx.Request] = []

    def exchange(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params["symbol"] == "BTCUSDT":
            return httpx.Response(200, content=FIXTURE.read_bytes())
        return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})

    source = KlinesMarketData(
        "https://exchange.test", httpx.Client(transport=httpx.MockTransport(exchange))
    )
    candles = source.minute(["BTCUSDT", "NOPE"], MINUTE)
    assert [(c.pair, c.minute, c.close, c.volume) for c in candles] == [
        ("BTCUSDT", MINUTE, 91288.12, 12.48211)
    ]  # the failing pair is a gap, not a zero
    params = dict(seen[0].url.params)
    assert params == {
        "symbol": "BTCUSDT",
        "interval": "1m",
        "startTime": "1764590400000",
        "limit": "1",
    }
    assert seen[0].url.path == "/api/v3/klines"


def test_a_candle_of_another_minute_or_a_bad_body_is_no_reading() -> None:
    body = json.loads(FIXTURE.read_text())
    assert parse_klines("BTCUSDT", body, MINUTE.replace(minute=MINUTE.minute + 1)) is None
    assert parse_klines("BTCUSDT", {"code": -1}, MINUTE) is None
    assert parse_klines("BTCUSDT", [[1764590400000, "x", "x", "x", "bad", "1"]], MINUTE) is None


def test_market_data_is_disabled_by_default(tmp_path) -> None:
    assert market_pairs(Settings(state_dir=tmp_path)) == []
    on = Settings(state_dir=tmp_path, metrics_market_url="https://exchange.test")
    assert market_pairs(on) == ["BTCUSDT", "ETHUSDT"]


def test_catalog_has_per_game_token_and_topic_metrics() -> None:
    keys = [m.key for m in wanted_metrics(["tri"], ["STRIDE"], ["BTCUSDT"])]
    assert keys == [
        "game.events/tri",
        "game.active_players/tri",
        "game.matches/tri",
        "rewards.minted/STRIDE",
        "rewards.burned/STRIDE",
        "kafka.dlq/game.events.dlq.v1",
        "kafka.dlq/wearable.samples.dlq.v1",
        "kafka.dlq/metrics.samples.dlq.v1",
        "kafka.dlq/chain.logs.dlq.v1",
        "kafka.dlq/battles.requests.dlq.v1",
        "wearables.samples",
        "market.price/BTCUSDT",
        "market.volume/BTCUSDT",
    ]


def test_subscriptions_become_routes_that_all_match(tmp_path) -> None:
    settings = Settings(state_dir=tmp_path, env="test", webhook_receiver_port=9097)
    config = alertmanager_config(
        settings,
        [
            Route("b", "game.events/tri", "https://b.example/h"),
            Route("a", "game.events/tri", "https://a.example/h"),
        ],
    )
    route = config["route"]
    assert route["group_by"] == ["alertname", "metric"]
    assert (route["group_wait"], route["group_interval"]) == ("1000ms", "2000ms")
    assert [r["receiver"] for r in route["routes"]] == ["sub-a", "sub-b"]
    assert all(
        r["continue"] and r["matchers"] == ['metric="game.events/tri"'] for r in route["routes"]
    )
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["sub-a"]["webhook_configs"] == [
        {"url": "https://a.example/h", "send_resolved": True}
    ]
    assert receivers["platform"]["webhook_configs"][0]["url"] == "http://127.0.0.1:9097/platform"
    prod = alertmanager_config(Settings(state_dir=tmp_path, env="prod"), [])
    assert prod["receivers"] == [{"name": "platform"}]  # no local recorder in production


@pytest.mark.parametrize(
    ("url", "local", "why"),
    [
        ("ftp://example.com/x", True, "must start with"),
        ("http://example.com/x", False, "https://"),
        ("https://u:p@example.com/x", True, "credentials"),
        ("https://token@example.com/x", True, "credentials"),
        ("https:///x", True, "host"),
        ("https://example.com:99999/x", True, "not a valid URL"),
        ("https://exa mple.com/x", True, "spaces"),
        ("https://127.0.0.1/x", False, "public address"),
        ("https://10.1.2.3/x", False, "public address"),
        ("https://localhost/x", False, "public address"),
        ("https://" + "a" * 2048 + ".com", True, "longer than"),
    ],
)
def test_webhook_urls_refused(url: str, local: bool, why: str) -> None:
    with pytest.raises(Invalid, match=why):
        validate_webhook_url(url, local=local, resolve=lambda host: DNS.get(host, []))


# A resolver standing in for DNS: names and what they resolve to.
DNS = {
    "hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "half.example.com": ["93.184.215.14", "10.0.0.7"],
    "cgnat.example.com": ["100.64.0.9"],
    "mapped.example.com": ["::ffff:169.254.169.254"],
}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://localhost./x", "not a public internet name"),
        ("https://api.localhost/x", "not a public internet name"),
        ("https://metadata.google.internal/computeMetadata/v1/", "not a public internet name"),
        ("https://printer.local/x", "not a public internet name"),
        ("https://intranet/x", "not a public internet name"),
        ("https://0/x", "is 0.0.0.0"),
        ("https://127.1/x", "is 127.0.0.1"),
        ("https://0x7f.1/x", "is 127.0.0.1"),
        ("https://2130706433/x", "is 127.0.0.1"),
        ("https://100.100.100.200/latest/meta-data/", "is 100.100.100.200"),
        ("https://169.254.169.254/latest/meta-data/", "is 169.254.169.254"),
        ("https://[::1]/x", "is ::1"),
        ("https://[::ffff:10.0.0.1]/x", "public address"),
        ("https://224.0.0.1/x", "is 224.0.0.1"),
        ("https://127.0.0.1.nip.io/x", "resolves to 127.0.0.1"),
        ("https://half.example.com/x", "resolves to 10.0.0.7"),
        ("https://cgnat.example.com/x", "resolves to 100.64.0.9"),
        ("https://mapped.example.com/x", "resolves to ::ffff:169.254.169.254"),
        ("https://nowhere.example.com/x", "does not resolve"),
    ],
)
def test_webhook_urls_to_the_platforms_own_network_are_refused_outside_a_local_stack(
    url: str, why: str
) -> None:
    with pytest.raises(Invalid, match=why.replace(".", r"\.").replace("[", r"\[")):
        validate_webhook_url(url, local=False, resolve=lambda host: DNS.get(host, []))


def test_webhook_urls_accepted() -> None:
    assert validate_webhook_url(
        "https://hooks.example.com/a?t=1", local=False, resolve=lambda host: DNS.get(host, [])
    )
    assert validate_webhook_url("https://93.184.215.14/a", local=False, resolve=None)
    assert validate_webhook_url("http://127.0.0.1:9097/x", local=True)


def test_chain_metrics_are_keyed_by_chain_and_contract_within_the_key_rules() -> None:
    token, collection, currency = "0x" + "ab" * 20, "0x" + "cd" * 20, "0x" + "00" * 20
    wanted = wanted_metrics(
        [],
        [],
        [],
        [token_member(31337, token)],
        [collection_member(31337, collection, currency)] * 2,  # seen twice: one pair
    )
    chain = [m for m in wanted if m.kind.startswith(("chain.", "marketplace."))]
    assert [m.key for m in chain] == [
        f"chain.transfers/31337-{token}",
        f"marketplace.volume/31337-{collection}-{currency}",
        f"marketplace.floor/31337-{collection}-{currency}",
    ]
    for metric in chain:  # the API's and the samples' contract accept every key
        assert re.fullmatch(METRIC_KEY_PATTERN, metric.key) and len(metric.key) <= 200
