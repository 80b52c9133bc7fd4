"""Gifts (offer → accept / decline / cancel / expire, with provenance) and achievements and
battle passes advanced by the scoring transaction, on the real PostgreSQL: a replayed batch
never advances progress or grants a reward twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.content import achievements, catalog, gifts, inventory
from core.content.achievements import AchievementSpec
from core.content.catalog import ContentSpec, Rewards, TierSpec
from core.content.catalog_models import ContentKind, GiftStatus
from core.content.gifts import GiftOffer
from core.content.inventory import MaxCountReached, NotEnough, PurchaseRequest
from core.events.contracts import GameEvent, MatchResult, ScoreReached
from core.events.store import apply_batch
from core.identity.models import PlayerLink
from core.platform.messages import Consumed
from core.platform.versions import StaleVersion, at_version
from core.rewards.commands import RewardRules
from tests.integration.content.conftest import Economy, User, make_item, make_pack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
TTL = timedelta(days=7)


def stock(engine: Engine, game_id: str, owner_id: str, item_id: str) -> int:
    with Session(engine) as session:
        return inventory.owned_count(session, game_id, owner_id, item_id)


def give(engine: Engine, offer: GiftOffer, now: datetime = NOW) -> uuid.UUID:
    with Session(engine) as session, session.begin():
        gift, _ = gifts.offer(session, offer, ttl=TTL, now=now)
        return gift.gift_id


def test_gift_offer_accept_decline_cancel_expire_with_provenance(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    g = economy.game_id
    make_item(db_engine, g, "rose", max_count=6)
    make_pack(db_engine, g, "roses", {"rose": 5})
    alice, bob, carol = new_user(), new_user(), new_user()
    with Session(db_engine) as session, session.begin():
        inventory.purchase(
            session,
            PurchaseRequest(g, "roses", carol.user_id, "key-c-roses", alice.user_id),
            token="STRIDE",
            now=NOW,
        )  # carol buys alice's roses: alice owns them, carol unlocked them

    offer = GiftOffer(g, alice.user_id, bob.user_id, "rose", 2, "key-gift-1")
    first = give(db_engine, offer)
    assert give(db_engine, offer) == first  # same key: the same gift
    assert stock(db_engine, g, alice.user_id, "rose") == 3  # two in escrow
    with Session(db_engine) as session, session.begin(), pytest.raises(gifts.NotYourGift):
        gifts.accept(session, first, carol.user_id, NOW)
    with Session(db_engine) as session, session.begin():
        accepted = gifts.accept(session, first, bob.user_id, NOW)
        assert accepted.status is GiftStatus.accepted
    with Session(db_engine) as session, session.begin(), pytest.raises(gifts.GiftClosed):
        gifts.decline(session, first, bob.user_id, NOW)
    assert stock(db_engine, g, bob.user_id, "rose") == 2

    declined = give(db_engine, GiftOffer(g, alice.user_id, bob.user_id, "rose", 1, "key-gift-2"))
    cancelled = give(db_engine, GiftOffer(g, alice.user_id, bob.user_id, "rose", 1, "key-gift-3"))
    expiring = give(
        db_engine, GiftOffer(g, alice.user_id, bob.user_id, "rose", 1, "key-gift-4"), NOW - 2 * TTL
    )
    assert stock(db_engine, g, alice.user_id, "rose") == 0
    with Session(db_engine) as session, session.begin(), pytest.raises(NotEnough):
        gifts.offer(
            session,
            GiftOffer(g, alice.user_id, bob.user_id, "rose", 1, "key-gift-5"),
            ttl=TTL,
            now=NOW,
        )
    with Session(db_engine) as session, session.begin():
        gifts.decline(session, declined, bob.user_id, NOW)
        gifts.cancel(session, cancelled, alice.user_id, NOW)
        assert gifts.expire_due(session, NOW) >= 1
        assert session.get(gifts.Gift, expiring).status is GiftStatus.expired  # type: ignore[union-attr]
    assert stock(db_engine, g, alice.user_id, "rose") == 3

    with Session(db_engine) as session:
        bobs = inventory.inventory_of(session, g, bob.user_id)
        history = inventory.history_of(session, g, bob.user_id)
    # Provenance: bob's roses were unlocked by carol, reached him from alice.
    assert [(s.unlocked_by, s.quantity) for s in bobs] == [(carol.user_id, 2)]
    assert [(e.reason, e.delta, e.counterparty, e.unlocked_by) for e in history] == [
        ("gift_received", 2, alice.user_id, carol.user_id)
    ]


def test_accepting_past_the_max_count_is_refused_and_the_gift_stays_open(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    g = economy.game_id
    make_item(db_engine, g, "badge", stackable=False)
    make_pack(db_engine, g, "badge", {"badge": 1})
    alice, bob = new_user(), new_user()
    for user in (alice, bob):
        with Session(db_engine) as session, session.begin():
            inventory.purchase(
                session,
                PurchaseRequest(g, "badge", user.user_id, f"key-{user.user_id}"),
                token="STRIDE",
                now=NOW,
            )
    gift_id = give(
        db_engine, GiftOffer(g, alice.user_id, bob.user_id, "badge", 1, "key-badge-gift")
    )
    with Session(db_engine) as session, session.begin(), pytest.raises(MaxCountReached):
        gifts.accept(session, gift_id, bob.user_id, NOW)
    with Session(db_engine) as session:
        assert gifts.get_gift(session, gift_id, bob.user_id).status is GiftStatus.offered


def test_a_stale_if_match_changes_nothing(db_engine: Engine, economy: Economy) -> None:
    g = economy.game_id
    make_item(db_engine, g, "shield")
    spec = catalog.ItemSpec(name="Shield II", stackable=True)
    with Session(db_engine) as session, session.begin():
        assert catalog.replace_item(session, g, "shield", spec, at_version(1), NOW).version == 2
    with Session(db_engine) as session, session.begin(), pytest.raises(StaleVersion):
        renamed = spec.model_copy(update={"name": "X"})
        catalog.replace_item(session, g, "shield", renamed, at_version(1), NOW)
    with Session(db_engine) as session:
        assert catalog.get_definition(session, catalog.ITEMS, g, "shield").name == "Shield II"


def _event(game_id: str, player: str, payload: MatchResult | ScoreReached) -> Consumed[GameEvent]:
    event = GameEvent(
        event_id=uuid.uuid4(),
        game_id=game_id,
        player_id=player,
        type=payload.type,  # type: ignore[arg-type]
        payload=payload,
        occurred_at=NOW,
        received_at=NOW,
    )
    return Consumed(event, 0, 0, NOW)


def test_achievements_and_tiers_unlock_once_under_replay(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    g = economy.game_id
    make_item(db_engine, g, "trophy", stackable=False)
    make_item(db_engine, g, "coin")
    linked = new_user()
    with Session(db_engine) as session, session.begin():
        session.add(PlayerLink(game_id=g, player_id="p-linked", user_id=linked.user_id))
        achievements.create_achievement(
            session,
            g,
            "three-wins",
            AchievementSpec(
                name="Win 3",
                metric="wins",
                threshold=3,
                rewards=Rewards(items=[{"item_id": "trophy"}], xp=50, tokens="5"),  # type: ignore[list-item]
            ),
        )
        achievements.create_achievement(
            session, g, "level-20", AchievementSpec(name="Level 20", metric="level", threshold=20)
        )
        catalog.create_content(
            session,
            g,
            "season-1",
            ContentSpec(
                kind=ContentKind.battle_pass,
                name="Season 1",
                xp_rules={"match_played": 10, "match_won": 20},
                tiers=[
                    TierSpec(
                        tier=1,
                        xp_required=30,
                        rewards=Rewards(items=[{"item_id": "coin", "quantity": 5}]),
                    ),  # type: ignore[list-item]
                    TierSpec(tier=2, xp_required=100, rewards=Rewards(tokens="1")),  # type: ignore[arg-type]
                    TierSpec(tier=3, xp_required=10_000),
                ],
            ),
        )
    win = lambda p: _event(g, p, MatchResult(outcome="win", score=1))  # noqa: E731
    batch = [win("p-linked") for _ in range(3)] + [win("p-alone") for _ in range(3)]
    batch += [_event(g, "p-alone", ScoreReached(score=1, level="world-1/level-21"))]
    rules = RewardRules(mint_per_win=0)

    first = apply_batch(db_engine, batch, rules)
    replay = apply_batch(db_engine, batch, rules)
    again = apply_batch(db_engine, [win("p-linked")], rules)

    assert replay.applied == 0
    mints = sorted(
        (c.player_id, c.reason, str(c.amount.normalize())) for c in first.commands_to_publish
    )
    assert mints == sorted(
        [
            (p, r, a)
            for p in ("p-alone", "p-linked")
            for r, a in (("achievement:three-wins", "5"), ("battle_pass:season-1:2", "1"))
        ]
    )
    # still pending: re-published with the same ids on replay, never new ones
    assert {c.command_id for c in replay.commands_to_publish} == {
        c.command_id for c in first.commands_to_publish
    }
    assert again.commands_to_publish == []
    with Session(db_engine) as session:
        linked_progress = achievements.progress_of(session, g, "p-linked")
        alone_progress = achievements.progress_of(session, g, "p-alone")
        passes = achievements.battle_passes_of(session, g, "p-linked")
        stacks = inventory.inventory_of(session, g, linked.user_id)
    assert [
        (d.achievement_id, p and p.value, p and p.unlocked_at is not None)
        for d, p in linked_progress
    ] == [
        ("level-20", None, None),
        ("three-wins", 3, True),  # frozen once unlocked
    ]
    assert [(d.achievement_id, p and p.value) for d, p in alone_progress] == [
        ("level-20", 21),
        ("three-wins", 3),
    ]
    # 4 wins x 30 XP + 50 XP of the achievement, counted once despite the replay
    assert [(b.xp, b.tier) for b in passes] == [(170, 2)]
    assert sorted((s.item_id, s.quantity) for s in stacks) == [("coin", 5), ("trophy", 1)]
    with db_engine.connect() as conn:
        grants = conn.execute(
            text("SELECT source_id, player_id, owner_id IS NULL FROM grants WHERE game_id = :g"),
            {"g": g},
        ).all()
    assert sorted(grants) == sorted(
        [
            (s, p, p == "p-alone")  # the unlinked player's grants wait without an owner
            for p in ("p-alone", "p-linked")
            for s in ("three-wins", "season-1:1", "season-1:2")
        ]
        + [("level-20", "p-alone", True)]
    )


def test_an_earned_reward_never_passes_the_max_count_and_the_ledger_says_what_came(
    db_engine: Engine, economy: Economy, new_user: Callable[[], User]
) -> None:
    g = economy.game_id
    make_item(db_engine, g, "medal", max_count=2)
    user = new_user()
    with Session(db_engine) as session, session.begin():
        session.add(PlayerLink(game_id=g, player_id="p", user_id=user.user_id))
        achievements.create_achievement(
            session,
            g,
            "first-win",
            AchievementSpec(
                name="Win 1",
                metric="wins",
                threshold=1,
                rewards=Rewards(items=[{"item_id": "medal", "quantity": 5}]),  # type: ignore[list-item]
            ),
        )
    apply_batch(db_engine, [_event(g, "p", MatchResult(outcome="win", score=1))], RewardRules())  # type: ignore[arg-type]
    assert stock(db_engine, g, user.user_id, "medal") == 2
    with Session(db_engine) as session:
        history = inventory.history_of(session, g, user.user_id)
    assert [(e.reason, e.item_id, e.delta) for e in history] == [("granted", "medal", 2)]
