"""The tables the admin panel shows, declared once in ``ADMIN_TABLES``.

A new table gets its view with one line: ``AdminTable(MyModel)`` (read-only by default).
Every view lists, searches, sorts, filters and exports its visible columns; ``hidden``
columns (secrets) never appear in lists, details, exports, search, forms or audit rows.
Export gives the rows the list shows, with its search, filters and sort (all pages), and
defuses CSV cells a spreadsheet would run as a formula.
Editors may change the ``editable`` columns; each change is audited (see ``api.admin.audit``).
A table may be seen only from ``view_role`` up and changed only from ``change_role`` up: the
admin tables are not shown to viewers at all, and only owners change admin users, never
their own row.

Each table reads like a product for operations staff: a ``title`` and a one-line
``description`` (what a row is, who writes it), a URL from its name (``reward_commands`` is
``/admin/reward-commands/``: other pages link to that scheme), ``links`` from the columns that
name another table's row (with the row's name beside the id, ``LABELS``), ``related`` links
from a row's page to the rows that refer to it, ``amounts`` with their token, JSON as JSON,
``periods`` where 1970 means all time, internals kept to the row's page (``list_hidden``).
Filter values the column cannot hold are refused with a 400 page saying what is expected
(``filter_refusal``) instead of being ignored. Exports keep plain values (``export_value``).
"""

from __future__ import annotations

import builtins  # the view class below defines a method named ``list``
import enum
import json
import string
import time
import types
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from markupsafe import Markup
from sqladmin import Flash
from sqladmin.authorization import Action
from sqladmin.filters import (
    BooleanFilter,
    OperationColumnFilter,
    StaticValuesFilter,
)
from sqladmin.formatters import BASE_FORMATTERS
from sqladmin.forms import ModelConverter, converts
from sqladmin.helpers import (
    Writer,
    get_object_identifier,
    object_identifier_values,
    secure_filename,
    stream_to_csv,
)
from sqladmin.pagination import Pagination
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
    inspect,
    select,
)
from sqlalchemy.sql import Select
from sqlalchemy.sql.sqltypes import Float, Integer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse
from wtforms import FloatField
from wtforms.fields.core import UnboundField

from api.admin.audit import acting_admin, field_diff
from api.admin.auth import current_admin, role_allows
from api.admin.display import (
    amount_text,
    details_url,
    diff_markup,
    json_block,
    json_cell,
    json_text,
    link,
    list_url,
    period_text,
    plain_decimal,
    precise_time_text,
    short_id,
    status_badge,
    time_text,
    whole_row,
)
from api.admin.display import related_links as display_related_links
from api.admin.listing import CURSOR_PARAMS, ScalableListView, stopped_statements_explained
from api.admin.query import csv_safe
from core.battles.models import Battle, MatchTicket, Player, RatingChange
from core.chain.models import (
    ChainAction,
    ChainBlock,
    ChainCursor,
    ChainLogRow,
    ChainOutbox,
    ChainProjectionHead,
    ChainWindowLog,
    ContractFacts,
    NftBalance,
    NftCollection,
    NftMetadata,
    TokenBalance,
)
from core.content.catalog_models import (
    AchievementDefinition,
    AchievementProgress,
    BattlePassProgress,
    CatalogContent,
    CatalogItem,
    CatalogPack,
    ContentTier,
    Gift,
    Grant,
    InventoryItem,
    InventoryLedger,
    UserContent,
)
from core.content.models import (
    ContentAsset,
    ContentAssetVersion,
    ContentReleaseChannel,
    ContentReleaseChannelHistory,
    ContentUpload,
)
from core.events.models import Game, PlayerTotals, ProcessedEvent, RewardCommandRow
from core.identity.models import (
    AdminAuditLog,
    AdminLoginAttempt,
    AdminRole,
    AdminSession,
    AdminUser,
    AppUser,
    LinkAuditLog,
    PlayerLink,
    PlayerLinkCode,
    UserWallet,
    WalletNonce,
)
from core.leaderboards.models import (
    Leaderboard,
    LeaderboardPeriod,
    LeaderboardRankBlock,
    LeaderboardRecord,
    LeaderboardSubmission,
)
from core.metrics.models import (
    Metric,
    MetricAlert,
    MetricAlertState,
    MetricRollupHour,
    MetricRollupHourly,
    MetricSample,
    MetricSamplerProgress,
    MetricSubscription,
)
from core.platform.config import get_settings
from core.platform.db import Base
from core.rewards.models import BurnAuthorization, ChainSender, ChainTx, RewardExecution
from core.scores.models import ScoreLog

EXPORT_MAX_ROWS = 100_000


@dataclass(frozen=True)
class Link:
    """A column that names a row of another table, shown as a link to it (with the row's
    name beside the id when the table has one, see ``LABELS``).

    ``key``: this row's columns that spell the target's primary key, in order (the target's
    detail page; default: the column itself). ``equals``: (target column, this row's column)
    pairs instead, for a link to the target's list filtered on them. ``table_from``: the
    column that holds the target's table name (the audit log's ``row_pk``).
    """

    column: str
    table: str = ""
    key: tuple[str, ...] = ()
    equals: tuple[tuple[str, str], ...] = ()
    table_from: str = ""


@dataclass(frozen=True)
class Related:
    """A "see also" link of a detail page: the rows of ``table`` whose ``equals`` columns
    hold this row's values ((target column, this row's column) pairs), or another admin page
    (``page``: a path under ``/admin`` with ``{column}`` fields of this row)."""

    label: str
    table: str = ""
    equals: tuple[tuple[str, str], ...] = ()
    page: str = ""


@dataclass(frozen=True)
class AdminTable:
    """How one table appears in the admin panel."""

    model: type[Base]
    title: str = ""  # plural, for menus and pages ("Reward commands"); default from the name
    description: str = ""  # one line: what a row is and who writes it
    hidden: tuple[str, ...] = ()
    # Columns editors may change; empty means read-only for everyone.
    editable: tuple[str, ...] = ()
    can_create: bool = False
    can_delete: bool = False
    icon: str = "fa-solid fa-table"
    category: str = ""  # menu group
    view_role: AdminRole = AdminRole.viewer  # the lowest role that sees the table at all
    change_role: AdminRole = AdminRole.editor  # the lowest role that may change it
    singular: str = ""  # one row, lower case ("reward command"); default from the title
    # Internals shown on a row's detail page only, never in lists (rank block bounds).
    list_hidden: tuple[str, ...] = ()
    list_first: tuple[str, ...] = ()  # columns a list shows first, in this order
    labels: tuple[tuple[str, str], ...] = ()  # (column, heading) where the default reads badly
    links: tuple[Link, ...] = ()
    related: tuple[Related, ...] = ()
    # (amount column, column holding its token; "" for the reward token of the settings)
    amounts: tuple[tuple[str, str], ...] = ()
    periods: tuple[str, ...] = ()  # leaderboard period starts: 1970 reads "All time"
    # The column naming the table a row is about (the audit log's ``table_name``): a role
    # sees only the rows about tables it may see itself.
    rows_about_table: str = ""

    @property
    def table_name(self) -> str:
        return str(self.model.__tablename__)

    @property
    def identity(self) -> str:
        """The table's URL part: its name with ``-`` for ``_`` (``/admin/reward-commands/``).
        Other pages (the home page, the standings) link to this scheme."""
        return identity_of(self.table_name)

    @property
    def plural(self) -> str:
        return self.title or self.table_name.replace("_", " ").capitalize()

    @property
    def one(self) -> str:
        if self.singular:
            return self.singular
        words = self.plural.lower()
        return words[:-1] if words.endswith("s") else words


def identity_of(table_name: str) -> str:
    return table_name.replace("_", "-")


GAME = Link("game_id", "games")
LEADERBOARD = Link("leaderboard_id", "leaderboards")
STANDINGS_OF_PERIOD = Related(
    "Standings of this period",
    page="standings?leaderboard_id={leaderboard_id}&period={period_start}",
)

ADMIN_TABLES: tuple[AdminTable, ...] = (
    AdminTable(
        ScoreLog,
        title="Score log",
        singular="score log entry",
        description="One row per get_score call of the app: the input and the score the API"
        " returned. Written by the API; editors may correct a row.",
        editable=("user_id", "input_value", "score", "formula_version"),
        can_delete=True,
        icon="fa-solid fa-chart-line",
    ),
    AdminTable(
        Game,
        title="Games",
        description="A game whose servers may post events, with its name and whether it is"
        " active. Created by an engineer (stride games create); editors may rename or"
        " deactivate it.",
        hidden=("api_key_hash",),
        editable=("name", "is_active"),
        icon="fa-solid fa-gamepad",
        category="Games",
        related=(
            Related("Players", "player_totals", (("game_id", "game_id"),)),
            Related("Events", "processed_events", (("game_id", "game_id"),)),
            Related("Reward commands", "reward_commands", (("game_id", "game_id"),)),
            Related("Leaderboards", "leaderboards", (("game_id", "game_id"),)),
        ),
    ),
    # Written by the stream processors and the leaderboard writer: read-only here, since a
    # hand edit would break their invariants (idempotency keys, rank block sizes).
    AdminTable(
        ProcessedEvent,
        title="Processed events",
        description="Each game event the scoring agent applied to the totals, once per"
        " game and event id. Written by the scoring agent; read-only.",
        icon="fa-solid fa-bolt",
        category="Games",
        list_first=("game_id", "player_id", "type", "payload", "occurred_at"),
        links=(GAME, Link("player_id", "player_totals", key=("game_id", "player_id"))),
        related=(
            Related(
                "Reward commands of this event",
                "reward_commands",
                (("game_id", "game_id"), ("source_event_id", "event_id")),
            ),
        ),
    ),
    AdminTable(
        PlayerTotals,
        title="Player totals",
        singular="player's totals",
        description="Running totals of one player in one game (matches, wins, score,"
        " purchases), folded from processed events by the scoring agent; read-only.",
        icon="fa-solid fa-calculator",
        category="Games",
        links=(GAME,),
        amounts=(("token_spent", ""),),
        related=(
            Related(
                "Events of this player",
                "processed_events",
                (("game_id", "game_id"), ("player_id", "player_id")),
            ),
            Related(
                "Reward commands of this player",
                "reward_commands",
                (("game_id", "game_id"), ("player_id", "player_id")),
            ),
            Related("Leaderboard records", "leaderboard_records", (("owner_id", "player_id"),)),
        ),
    ),
    AdminTable(
        RewardCommandRow,
        title="Reward commands",
        description="A token mint or burn owed to a player for a game event, and where the"
        " chain writer has it. Written by the scoring agent and the chain writer; read-only.",
        icon="fa-solid fa-coins",
        category="Games",
        list_first=("game_id", "player_id", "action", "amount", "status", "reason"),
        list_hidden=("token",),  # the amount says it: "10 STRIDE"
        links=(
            GAME,
            Link("player_id", "player_totals", key=("game_id", "player_id")),
            Link("source_event_id", "processed_events", key=("game_id", "source_event_id")),
        ),
        related=(
            Related(
                "How the chain writer executes it",
                "reward_executions",
                (("command_id", "command_id"),),
            ),
        ),
        amounts=(("amount", "token"),),
    ),
    AdminTable(
        Leaderboard,
        title="Leaderboards",
        description="A leaderboard of a game: how scores combine and sort, and when it"
        " resets. Created by an engineer (stride leaderboards create); read-only.",
        icon="fa-solid fa-trophy",
        category="Leaderboards",
        links=(GAME,),
        periods=("period_start",),
        labels=(("period_start", "Current period"), ("metadata_", "Metadata")),
        related=(
            Related("Standings", page="standings?leaderboard_id={id}"),
            Related("Records", "leaderboard_records", (("leaderboard_id", "id"),)),
            Related("Periods", "leaderboard_periods", (("leaderboard_id", "id"),)),
            Related("Submissions", "leaderboard_submissions", (("leaderboard_id", "id"),)),
        ),
    ),
    AdminTable(
        LeaderboardPeriod,
        title="Leaderboard periods",
        description="A period of a leaderboard (a day, a week, all time): open until its"
        " reset archives it. Written by the leaderboard writer; read-only.",
        icon="fa-solid fa-calendar",
        category="Leaderboards",
        links=(LEADERBOARD,),
        periods=("period_start",),
        related=(
            STANDINGS_OF_PERIOD,
            Related(
                "Records of this period",
                "leaderboard_records",
                (("leaderboard_id", "leaderboard_id"), ("period_start", "period_start")),
            ),
        ),
    ),
    AdminTable(
        LeaderboardRecord,
        title="Leaderboard records",
        description="One player's score in one period of a leaderboard (ranks are on the"
        " standings page). Written by the leaderboard writer; read-only.",
        icon="fa-solid fa-ranking-star",
        category="Leaderboards",
        list_hidden=("sort_key",),
        labels=(("num_score", "Scores submitted"),),
        links=(LEADERBOARD, Link("owner_id", "player_totals", equals=(("player_id", "owner_id"),))),
        periods=("period_start",),
        related=(STANDINGS_OF_PERIOD,),
    ),
    AdminTable(
        LeaderboardSubmission,
        title="Leaderboard submissions",
        description="Each event applied to a leaderboard, once (the writer's idempotency"
        " key). Written by the leaderboard writer; read-only.",
        icon="fa-solid fa-inbox",
        category="Leaderboards",
        links=(LEADERBOARD, Link("owner_id", "player_totals", equals=(("player_id", "owner_id"),))),
        periods=("period_start",),
    ),
    AdminTable(
        LeaderboardRankBlock,
        title="Leaderboard rank blocks",
        description="Internal index of about a thousand records each that makes a rank fast"
        " to compute. Kept exact by the leaderboard writer; read-only.",
        icon="fa-solid fa-layer-group",
        category="Leaderboards",
        list_hidden=("lower_sort_key", "lower_reached_at", "lower_owner_id"),
        links=(LEADERBOARD,),
        periods=("period_start",),
    ),
    AdminTable(
        AppUser,
        title="App users",
        description="A user of the mobile app and whether they may sign in. Created by the"
        " app's sign-up; editors may deactivate one.",
        hidden=("token_hash",),
        editable=("is_active",),
        icon="fa-solid fa-mobile-screen",
        category="App users",
        related=(
            Related("Wallets", "user_wallets", (("user_id", "user_id"),)),
            Related("Linked players", "player_links", (("user_id", "user_id"),)),
            Related("Link history", "link_audit_log", (("user_id", "user_id"),)),
        ),
    ),
    # Wallet and player links change only through their signed flows (docs/wallets.md).
    AdminTable(
        UserWallet,
        title="Wallets",
        description="A wallet an app user proved they own by signing in with it (EIP-4361;"
        " contract wallets by EIP-1271), one primary per user. Written by the API; read-only.",
        icon="fa-solid fa-wallet",
        category="App users",
        links=(Link("user_id", "app_users"),),
    ),
    AdminTable(
        PlayerLink,
        title="Player links",
        description="A game's player linked to an app user: the user issued a link code and"
        " the game's server redeemed it. Written by the API; read-only.",
        icon="fa-solid fa-link",
        category="App users",
        links=(
            GAME,
            Link("user_id", "app_users"),
            Link("player_id", "player_totals", key=("game_id", "player_id")),
        ),
    ),
    AdminTable(
        LinkAuditLog,
        title="Link history",
        singular="link history entry",
        description="Every wallet and player link, unlink and primary change, with who made"
        " it. Written by the API; read-only.",
        icon="fa-solid fa-clipboard-check",
        category="App users",
        links=(Link("user_id", "app_users"),),
    ),
    AdminTable(
        WalletNonce,
        title="Wallet sign-in nonces",
        description="A single-use nonce an app user asked for to sign a wallet sign-in"
        " message, with its expiry and when it was used. Written by the API; read-only.",
        icon="fa-solid fa-key",
        category="App users",
        links=(Link("user_id", "app_users"),),
    ),
    AdminTable(
        PlayerLinkCode,
        title="Player link codes",
        description="A short-lived code an app user issued for a game's server to link one"
        " of its players to them (only the code's SHA-256 is kept, as its key). Written by"
        " the API; read-only.",
        icon="fa-solid fa-ticket",
        category="App users",
        links=(GAME, Link("user_id", "app_users")),
    ),
    # Who may do what: only owners change roles and active flags (audited), never their own.
    AdminTable(
        AdminUser,
        title="Admin users",
        description="A person who may sign in to this panel, with their role. Created with"
        " stride admin create-user; owners change roles and active flags.",
        hidden=("password_hash",),
        editable=("role", "is_active"),
        icon="fa-solid fa-user-shield",
        category="Admin",
        view_role=AdminRole.editor,
        change_role=AdminRole.owner,
        related=(
            Related("Their changes", "admin_audit_log", (("admin_username", "username"),)),
            Related("Their sign-in attempts", "admin_login_attempts", (("username", "username"),)),
            Related("Their sessions", "admin_sessions", (("admin_user_id", "id"),)),
        ),
    ),
    # Deleting a session signs it out (audited like any delete); its token hash never shows.
    AdminTable(
        AdminSession,
        title="Admin sessions",
        description="A signed-in browser of an admin user, valid 8 hours. Opened by signing"
        " in; owners may delete one to sign it out.",
        hidden=("token_hash",),
        can_delete=True,
        icon="fa-solid fa-id-card",
        category="Admin",
        view_role=AdminRole.owner,
        change_role=AdminRole.owner,
        links=(Link("admin_user_id", "admin_users"),),
    ),
    AdminTable(
        AdminAuditLog,
        title="Audit log",
        singular="audit entry",
        description="Who changed which row of this panel, when, and the fields they changed."
        " Written with every change, in the same transaction; read-only.",
        icon="fa-solid fa-clipboard-list",
        category="Admin",
        list_first=("at", "admin_username", "action", "table_name", "row_pk", "before"),
        list_hidden=("after",),
        labels=(
            ("admin_username", "Admin"),
            ("table_name", "Table"),
            ("row_pk", "Row"),
            ("before", "Changes"),
            ("after", "Whole row after"),
        ),
        links=(Link("row_pk", table_from="table_name"),),
        rows_about_table="table_name",
    ),
    # Metrics: each metric's alert rule is editable (the database's checks keep the resolve
    # line below the fire line); alerts are the agent's record; deleting a subscription
    # takes it out of Alertmanager's routes at the sampler's next minute.
    AdminTable(
        Metric,
        title="Metrics",
        description="One metric of the catalog (what it counts, its unit, its source) and its"
        " alert rule. Written by the sampler; editors may change the rule.",
        editable=(
            "description",
            "fire_factor",
            "resolve_factor",
            "window_minutes",
            "min_samples",
            "pending_points",
        ),
        icon="fa-solid fa-wave-square",
        category="Metrics",
    ),
    AdminTable(
        MetricAlert,
        title="Metric alerts",
        description="One alert episode of a metric: when it fired, when it resolved and what"
        " Alertmanager was told. Written by the alert agent; read-only.",
        icon="fa-solid fa-bell",
        category="Metrics",
    ),
    AdminTable(
        MetricAlertState,
        title="Metric alert states",
        description="The alert agent's state per metric: the last minute judged and the open"
        " episode. Written by the alert agent; read-only.",
        icon="fa-solid fa-traffic-light",
        category="Metrics",
    ),
    AdminTable(
        MetricSample,
        title="Metric samples",
        description="One sample per metric per minute (a missing minute is a gap, not a"
        " zero). Written by the sampler; read-only.",
        icon="fa-solid fa-chart-area",
        category="Metrics",
    ),
    AdminTable(
        MetricRollupHourly,
        title="Metric hourly rollups",
        description="Per metric and hour: count, mean, standard deviation, min and max of its"
        " samples. Written by the sampler and the hourly job; read-only.",
        icon="fa-solid fa-clock",
        category="Metrics",
    ),
    AdminTable(
        MetricRollupHour,
        title="Completed rollup hours",
        singular="completed rollup hour",
        description="An hour whose rollups are complete, so rankings read it from the rollups."
        " Written by the hourly job; read-only.",
        icon="fa-solid fa-check",
        category="Metrics",
    ),
    AdminTable(
        MetricSamplerProgress,
        title="Sampler progress",
        singular="sampler progress row",
        description="The last minute the sampler finished; a restart resumes after it."
        " Written by the sampler; read-only.",
        icon="fa-solid fa-forward",
        category="Metrics",
    ),
    AdminTable(
        MetricSubscription,
        title="Metric subscriptions",
        description="A webhook Alertmanager calls when a metric fires and when it resolves."
        " Written by the API; editors may delete one. The URL is not shown: it carries its"
        " owner's secret token.",
        hidden=("webhook_url",),
        can_delete=True,
        icon="fa-solid fa-satellite-dish",
        category="Metrics",
    ),
    # Client IP addresses: personal data, hidden from viewers as from the SQL page.
    AdminTable(
        AdminLoginAttempt,
        title="Sign-in attempts",
        description="Each sign-in to this panel, failed or not, with the client address (for"
        " the throttle). Written by the sign-in page; read-only.",
        icon="fa-solid fa-user-lock",
        category="Admin",
        view_role=AdminRole.editor,
    ),
    # Operators name collections (contracts per chain) for the app's NFT filter.
    AdminTable(
        NftCollection,
        title="NFT collections",
        description='A named collection (e.g. "Genopets") and its contract on a chain, for the'
        " app's NFT filter. Written by operations: editors add, rename and remove them.",
        editable=("name", "contract"),
        can_create=True,
        can_delete=True,
        icon="fa-solid fa-images",
        category="Chain",
    ),
    # Written by the app's write flows (the API): read-only (the status follows the chain).
    AdminTable(
        ChainAction,
        title="App actions",
        singular="app action",
        description="What an app user's wallet was asked to sign (stake, trade, bridge),"
        " simulated first, then its transaction: prepared, submitted, confirmed or failed with"
        " the decoded reason (a bridge transfer relaying in between). Written by the API;"
        " read-only.",
        icon="fa-solid fa-signature",
        category="Chain",
        list_first=("user_id", "kind", "chain_id", "status", "tx_hash", "created_at"),
        list_hidden=("prepared",),
        links=(
            Link("user_id", "app_users"),
            Link(
                "tx_hash", "chain_logs", equals=(("chain_id", "chain_id"), ("tx_hash", "tx_hash"))
            ),
        ),
    ),
    # Written by the chain indexer and the projections agent: read-only (a hand edit would
    # break the reorg window, the outbox order or the idempotency keys).
    AdminTable(
        TokenBalance,
        title="Token balances",
        singular="token balance",
        description="An ERC-20 balance of one holder on one chain (zero balances are removed)."
        " Written by the chain projections agent; read-only.",
        icon="fa-solid fa-coins",
        category="Chain",
    ),
    AdminTable(
        NftBalance,
        title="NFT holdings",
        singular="NFT holding",
        description="How many of one NFT a holder has (1 for an ERC-721 owner, any amount of an"
        " ERC-1155). Written by the chain projections agent; read-only.",
        icon="fa-solid fa-gem",
        category="Chain",
    ),
    AdminTable(
        NftMetadata,
        title="NFT metadata",
        singular="NFT metadata entry",
        description="An NFT's resolved metadata (name, image, traits) or why it could not"
        " be resolved"
        " and when it is tried again. Written by the indexer's metadata pass; read-only.",
        icon="fa-solid fa-tags",
        category="Chain",
    ),
    AdminTable(
        ContractFacts,
        title="Contract facts",
        singular="contract facts entry",
        description="What a contract is (ERC-20, ERC-721 or ERC-1155), its name, symbol and"
        " decimals,"
        " fetched once. Written by the indexer; read-only.",
        icon="fa-solid fa-file-contract",
        category="Chain",
    ),
    AdminTable(
        ChainLogRow,
        title="Chain logs",
        singular="chain log",
        description="Every EVM log the projections have seen, canonical or retracted by a"
        " reorg (the"
        " idempotency key). Written by the chain projections agent; read-only.",
        icon="fa-solid fa-list",
        category="Chain",
    ),
    AdminTable(
        RewardExecution,
        title="Reward executions",
        singular="reward execution",
        description="How the chain writer executes a reward command: the wallet, why it waits"
        " or failed, the transaction carrying it. Written by the chain writer; read-only.",
        icon="fa-solid fa-paper-plane",
        category="Chain",
        list_first=("command_id", "chain_id", "recipient", "reason", "chain_tx_id"),
        links=(Link("command_id", "reward_commands"), Link("chain_tx_id", "chain_txs")),
    ),
    AdminTable(
        ChainTx,
        title="Writer transactions",
        singular="writer transaction",
        description="A transaction the chain writer signed: nonce, fees, every hash it was"
        " broadcast under, the commands it carries, its block or decoded failure. Written by"
        " the chain writer; read-only.",
        icon="fa-solid fa-receipt",
        category="Chain",
        list_first=("chain_id", "nonce", "kind", "status", "tx_hash", "mined_block"),
        list_hidden=("raw_tx", "tx_hashes", "command_ids"),
        related=(Related("Its reward executions", "reward_executions", (("chain_tx_id", "id"),)),),
    ),
    AdminTable(
        ChainSender,
        title="Writer senders",
        singular="writer sender",
        description="Per chain: the chain writer's sender, its next nonce, the chain's nonces at"
        " the last reconciliation and the last repair. Written by the chain writer; read-only.",
        icon="fa-solid fa-key",
        category="Chain",
    ),
    AdminTable(
        BurnAuthorization,
        title="Burn authorizations",
        singular="burn authorization",
        description="A holder's EIP-2612 permit for a purchase paid in the token (the burn"
        " command). Written by POST /v1/purchases/{id}/authorization; read-only.",
        icon="fa-solid fa-signature",
        category="Chain",
        hidden=("v", "r", "s"),
        links=(Link("command_id", "reward_commands"),),
    ),
    AdminTable(
        ChainCursor,
        title="Chain cursors",
        singular="chain cursor",
        description="Per chain: the block the indexer reached, the node's head and the last error."
        " Written by the indexer; read-only.",
        icon="fa-solid fa-forward",
        category="Chain",
    ),
    AdminTable(
        ChainProjectionHead,
        title="Projected blocks",
        singular="projected block",
        description="Per chain: the highest block whose logs the projections applied."
        " Written by the"
        " chain projections agent; read-only.",
        icon="fa-solid fa-flag",
        category="Chain",
    ),
    AdminTable(
        ChainBlock,
        title="Unfinalized blocks",
        singular="unfinalized block",
        description="A block of the indexer's reorg window: number, hash and parent hash."
        " Written by"
        " the indexer; read-only.",
        icon="fa-solid fa-cube",
        category="Chain",
    ),
    AdminTable(
        ChainWindowLog,
        title="Window logs",
        singular="window log",
        description="A log published for a block of the reorg window, retracted if that block is"
        " orphaned. Written by the indexer; read-only.",
        icon="fa-solid fa-clock-rotate-left",
        category="Chain",
    ),
    AdminTable(
        ChainOutbox,
        title="Chain outbox",
        singular="chain outbox record",
        description="A record waiting to be published on chain.logs.v1, written with the cursor it"
        " belongs to. Written by the indexer; read-only.",
        icon="fa-solid fa-paper-plane",
        category="Chain",
    ),
    # Written by the battle engine agent: read-only except what a support person fixes.
    AdminTable(
        Player,
        title="Battle players",
        description="A game's player as battles know them: display name, OpenSkill rating"
        " (mu, sigma) and record. Created by the game server or on a first battle, rated by"
        " the battle engine; editors may rename or deactivate a player.",
        editable=("display_name", "is_active"),
        icon="fa-solid fa-user-ninja",
        category="Battles",
        links=(GAME,),
        related=(
            Related(
                "Rating history",
                "rating_history",
                (("game_id", "game_id"), ("player_id", "player_id")),
            ),
        ),
    ),
    AdminTable(
        Battle,
        title="Battles",
        description="A battle a game server queued: queued, resolved with its ranks, seed and"
        " engine version, or rejected with the reason. Written by the API and the battle"
        " engine; read-only.",
        icon="fa-solid fa-khanda",
        category="Battles",
        list_first=("game_id", "mode", "status", "sides", "requested_at"),
        links=(GAME,),
        related=(Related("Rating changes", "rating_history", (("battle_id", "battle_id"),)),),
    ),
    AdminTable(
        RatingChange,
        title="Rating history",
        singular="rating change",
        description="One player's rating before and after one battle, applied once per battle"
        " and player. Written by the battle engine; read-only.",
        icon="fa-solid fa-chart-line",
        category="Battles",
        links=(
            GAME,
            Link("battle_id", "battles"),
            Link("player_id", "players", key=("game_id", "player_id")),
        ),
    ),
    AdminTable(
        MatchTicket,
        title="Match tickets",
        description="A player waiting for a battle in one game and mode: waiting, matched"
        " (with its battle) or expired. Written by the API and the matchmaker; read-only.",
        icon="fa-solid fa-ticket",
        category="Battles",
        links=(GAME, Link("battle_id", "battles")),
    ),
    # Game content: written through the API (game keys) and its uploads; versions are
    # immutable (the database refuses an UPDATE), so every content table is read-only here.
    AdminTable(
        ContentAsset,
        title="Content assets",
        description="A game's model, texture, sound or config file by name, with its tags."
        " Written by studios through the API (game key); read-only.",
        icon="fa-solid fa-cubes",
        category="Content",
        list_first=("game_id", "name", "kind", "tags", "updated_at"),
        links=(GAME,),
        related=(
            Related("Versions", "content_asset_versions", (("asset_id", "asset_id"),)),
            Related("Release channels", "content_release_channels", (("asset_id", "asset_id"),)),
            Related("Uploads", "content_uploads", (("asset_id", "asset_id"),)),
        ),
    ),
    AdminTable(
        ContentAssetVersion,
        title="Asset versions",
        description="One immutable version of an asset: SHA-256, size, type and where its"
        " bytes are in object storage. Made by completed uploads; never changed.",
        icon="fa-solid fa-code-branch",
        category="Content",
        list_first=("asset_id", "version", "size_bytes", "content_type", "created_at"),
        links=(GAME, Link("asset_id", "content_assets")),
    ),
    AdminTable(
        ContentReleaseChannel,
        title="Release channels",
        description="A movable pointer (latest, live, beta...) of an asset per platform to one"
        " of its versions. Moved by studios through the API (If-Match); read-only.",
        icon="fa-solid fa-code-fork",
        category="Content",
        links=(
            GAME,
            Link("asset_id", "content_assets"),
            Link("version_id", "content_asset_versions"),
        ),
        related=(
            Related("History", "content_release_channel_history", (("channel_id", "channel_id"),)),
        ),
    ),
    AdminTable(
        ContentReleaseChannelHistory,
        title="Release channel history",
        singular="release channel move",
        description="Every move of a release channel: from which version to which, by whom"
        " and why. Written with each move; read-only.",
        icon="fa-solid fa-clock-rotate-left",
        category="Content",
        links=(
            Link("channel_id", "content_release_channels"),
            Link("asset_id", "content_assets"),
        ),
    ),
    AdminTable(
        ContentUpload,
        title="Content uploads",
        description="A resumable (tus) upload of a new version: declared length and SHA-256,"
        " bytes received, and its end (completed, failed, terminated, expired). Written by"
        " the API; read-only.",
        icon="fa-solid fa-upload",
        category="Content",
        list_first=("asset_id", "status", "upload_offset", "upload_length", "expires_at"),
        list_hidden=("parts", "metadata_"),
        links=(GAME, Link("asset_id", "content_assets")),
    ),
    # The economy (core/content/): studios write definitions through the API (versioned,
    # ETag / If-Match), so the panel only reads them; grants, inventories and the ledger
    # carry idempotency keys and provenance that a hand edit would break.
    AdminTable(
        CatalogItem,
        title="Catalog items",
        description="Something a player of a game can own: stackable or not, max count,"
        " consumable, giftable. Written by the studio through the API; read-only.",
        icon="fa-solid fa-gem",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        CatalogContent,
        title="Catalog content",
        singular="content definition",
        description="Content a player unlocks once, such as a battle-pass season (with its XP"
        " rules). Written by the studio through the API; read-only.",
        icon="fa-solid fa-unlock",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        ContentTier,
        title="Battle-pass tiers",
        singular="battle-pass tier",
        description="One tier of a battle-pass season: the XP that reaches it and its rewards."
        " Written with its season through the API; read-only.",
        icon="fa-solid fa-layer-group",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        CatalogPack,
        title="Packs",
        description="Items and content sold together: price and currency, sale window, stock"
        " and how many were sold. Written by the studio through the API; read-only.",
        icon="fa-solid fa-box-open",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        InventoryItem,
        title="Inventory items",
        singular="inventory stack",
        description="Units of an item an app user owns, one stack per unlocker (who paid for"
        " or earned them). Written by purchases, gifts and rewards; read-only.",
        icon="fa-solid fa-boxes-stacked",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        UserContent,
        title="Unlocked content",
        singular="unlocked content",
        description="Content an app user has unlocked, and who unlocked it for them. Written"
        " by purchases; read-only.",
        icon="fa-solid fa-key",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        Grant,
        title="Grants",
        description="What one idempotency key granted, forever: a purchase (with its price,"
        " burn command and payment state: held, paid, failed, or refund_due → refunding →"
        " refunded with its refund command), an achievement or a battle-pass tier. Written by"
        " purchases, the scoring agent, the chain writer's confirmations and the sweeper;"
        " read-only.",
        icon="fa-solid fa-gift",
        category="Economy",
        list_first=(
            "game_id",
            "source",
            "source_id",
            "owner_id",
            "unlocked_by",
            "payment_state",
            "created_at",
        ),
        links=(GAME,),
    ),
    AdminTable(
        Gift,
        title="Gifts",
        description="Units one user offered another: offered (in escrow), accepted, declined,"
        " cancelled or expired. Written by the users through the API; read-only.",
        icon="fa-solid fa-hand-holding-heart",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        InventoryLedger,
        title="Inventory ledger",
        singular="inventory ledger entry",
        description="Every change of an inventory (granted, gifted, returned, consumed), in"
        " order: the provenance of each unit. Append-only; read-only.",
        icon="fa-solid fa-book",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        AchievementDefinition,
        title="Achievements",
        description="An achievement of a game: a metric of the player reaching a threshold,"
        " and its rewards. Written by the studio through the API; read-only.",
        icon="fa-solid fa-trophy",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        AchievementProgress,
        title="Achievement progress",
        singular="achievement progress",
        description="A player's value of an achievement's metric, unlocked once. Written by"
        " the scoring agent from game events; read-only.",
        icon="fa-solid fa-bars-progress",
        category="Economy",
        links=(GAME,),
    ),
    AdminTable(
        BattlePassProgress,
        title="Battle-pass progress",
        singular="battle-pass progress",
        description="A player's XP in a battle-pass season and the highest tier granted."
        " Written by the scoring agent from game events; read-only.",
        icon="fa-solid fa-forward",
        category="Economy",
        links=(GAME,),
    ),
)

TABLES_BY_NAME: dict[str, AdminTable] = {t.table_name: t for t in ADMIN_TABLES}

# Names shown beside the ids that point at these tables: (key column, name column).
LABELS: dict[str, tuple[Any, Any]] = {
    "games": (Game.game_id, Game.name),
    "admin_users": (AdminUser.id, AdminUser.username),
}


def _columns(model: type[Base]) -> list[tuple[str, Any]]:
    """(attribute name, column) of every mapped column; sqladmin speaks attribute names."""
    return [(attr.key, attr.columns[0]) for attr in inspect(model).column_attrs]


def _is_searchable(column: Any) -> bool:
    return isinstance(column.type, String | Text | Uuid | JSON)


def _column_filter(key: str, column: Any, title: str) -> Any | None:
    kind = column.type
    if isinstance(kind, Boolean):
        return BooleanFilter(key, title=title)
    if isinstance(kind, Enum) and kind.enum_class is not None:
        members: Iterable[enum.Enum] = kind.enum_class
        return StaticValuesFilter(key, values=[(m.value, m.value) for m in members], title=title)
    if isinstance(kind, String | Text | Integer | Numeric | Float | DateTime | Uuid):
        return OperationColumnFilter(key, title=title)
    return None  # JSON has no useful operator: the search box finds text in it


def column_label(key: str, *, linked: bool = False) -> str:
    """A column's heading: ``game_id`` reads "Game ID", or "Game" where it is a link."""
    words = key.strip("_").split("_")
    if linked and len(words) > 1 and words[-1] in ("id", "pk"):
        words = words[:-1]
    text = " ".join({"id": "ID", "api": "API", "ip": "IP"}.get(w, w) for w in words)
    return text[:1].upper() + text[1:]


# ---- how values read on the pages (exports keep plain values) -----------------------------

Formatter = Callable[[Any, str, Request], Any]


def _root(request: Request) -> str:
    """The admin panel's URL without its trailing slash."""
    return str(request.url_for("admin:index")).rstrip("/")


def _labels(request: Request) -> dict[tuple[str, str], str]:
    """Names of the rows the page links to, loaded once per page (``StrideModelView``)."""
    labels: dict[tuple[str, str], str] = getattr(request.state, "stride_labels", {})
    return labels


def _link_formatter(ref: Link, *, compact: bool) -> Formatter:
    def formatted(obj: Any, _prop: str, request: Request) -> Any:
        value = getattr(obj, ref.column)
        if value is None:
            return Markup("")
        root = _root(request)
        if ref.table_from:  # the audit log: the row of whichever table it names
            target = TABLES_BY_NAME.get(getattr(obj, ref.table_from))
            if target is None:
                return str(value)
            if getattr(obj, "action", None) == "delete":
                return Markup('{} <span class="text-secondary small">(deleted)</span>').format(
                    value
                )
            return link(f"{root}/{target.identity}/details/{quote(str(value), safe=';:@+')}", value)
        identity = identity_of(ref.table)
        if ref.equals:
            href = list_url(root, identity, [(t, getattr(obj, c)) for t, c in ref.equals])
        else:
            href = details_url(root, identity, [getattr(obj, c) for c in ref.key or (ref.column,)])
        name = _labels(request).get((ref.table, str(value)))
        shown = short_id(value) if compact else str(value)
        return link(href, name, shown) if name else link(href, shown, title=str(value))

    return formatted


def _table_title(obj: Any, prop: str, request: Request) -> Any:
    """An audit row's table by its title, linked to its list."""
    target = TABLES_BY_NAME.get(getattr(obj, prop))
    if target is None:
        return getattr(obj, prop)
    return link(f"{_root(request)}/{target.identity}/list", target.plural)


def _amount_formatter(token_column: str) -> Formatter:
    def formatted(obj: Any, prop: str, _request: Request) -> str:
        token = getattr(obj, token_column) if token_column else get_settings().reward_token
        return amount_text(getattr(obj, prop), token)

    return formatted


def _status_formatter(obj: Any, prop: str, _request: Request) -> Markup | str:
    return status_badge(getattr(obj, prop))


def _period_formatter(obj: Any, prop: str, _request: Request) -> str:
    return period_text(getattr(obj, prop))


def _json_list(obj: Any, prop: str, _request: Request) -> Markup:
    return json_cell(getattr(obj, prop))


def _json_detail(obj: Any, prop: str, _request: Request) -> Markup:
    return json_block(getattr(obj, prop))


def _audit_changes(*, compact: bool) -> Formatter:
    def formatted(obj: Any, _prop: str, _request: Request) -> Markup:
        return diff_markup(field_diff(obj.before, obj.after), action=obj.action, compact=compact)

    return formatted


def _audit_after(obj: Any, _prop: str, _request: Request) -> Markup:
    return whole_row(obj.after, "The whole row after the change")


def formatters(table: AdminTable) -> tuple[dict[str, Formatter], dict[str, Formatter]]:
    """(list, detail) formatters of a table's columns: links, amounts, periods, JSON."""
    shared: dict[str, Formatter] = {}
    listed: dict[str, Formatter] = {}
    detailed: dict[str, Formatter] = {}
    for key, column in _columns(table.model):
        if isinstance(column.type, JSON):
            listed[key], detailed[key] = _json_list, _json_detail
    for ref in table.links:
        listed[ref.column] = _link_formatter(ref, compact=True)
        detailed[ref.column] = _link_formatter(ref, compact=False)
    for amount, token_column in table.amounts:
        shared[amount] = _amount_formatter(token_column)
    for period in table.periods:
        shared[period] = _period_formatter
    if table.model is RewardCommandRow:
        shared["status"] = _status_formatter
    if table.model is AdminAuditLog:
        shared["table_name"] = _table_title
        listed["before"] = _audit_changes(compact=True)
        detailed["before"] = _audit_changes(compact=False)
        detailed["after"] = _audit_after
    return {**listed, **shared}, {**detailed, **shared}


def export_value(value: Any) -> Any:
    """A value as an export file holds it: plain, machine-readable. Amounts in plain decimal
    notation, as text in JSON so no digit is lost (``"10"``, ``"0.000000000000000001"``);
    JSON as JSON; times in ISO 8601; enums by their value."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def export_text(value: Any) -> str:
    """A CSV cell of an export (before formula defusing)."""
    plain = export_value(value)
    if plain is None:
        return ""
    if isinstance(plain, dict | list):
        return json_text(plain)
    return str(plain)


# ---- filter values are checked before they reach the query --------------------------------

_INTEGER_BITS = ((SmallInteger, 16), (BigInteger, 64), (Integer, 32))


def _expected(column: Any, operation: str) -> tuple[Callable[[str], object], str] | None:
    """(parser that raises ValueError, what the filter expects) for a column, or None if any
    text will do."""
    kind = column.type
    for integer_type, bits in _INTEGER_BITS:
        if isinstance(kind, integer_type):
            limit = 2 ** (bits - 1)

            def whole(raw: str, limit: int = limit) -> object:
                number = int(raw)
                if not -limit <= number < limit:
                    raise ValueError(raw)
                return number

            return whole, f"a whole number between {-limit:,} and {limit - 1:,}, e.g. 25"
    if isinstance(kind, Numeric | Float):

        def number(raw: str) -> object:
            parsed = Decimal(raw)
            if not parsed.is_finite():
                raise ValueError(raw)
            return parsed

        return number, "a number, e.g. 25 or 2.5"
    if isinstance(kind, DateTime):
        return (
            datetime.fromisoformat,
            "a date, e.g. 2026-11-30, or a date and time, e.g. 2026-11-30 14:00",
        )
    if isinstance(kind, Uuid) and operation == "equals":
        return uuid.UUID, "a whole id like 3f2b8c1e-0d4a-4b6f-9a71-2c5e8d9f0a1b"
    return None


@dataclass(frozen=True)
class FilterRefusal:
    message: str
    parameters: tuple[str, ...]  # the query parameters of the refused filter


def filter_refusal(
    filters: Iterable[Any], params: Mapping[str, str], model: type[Base]
) -> FilterRefusal | None:
    """Why the filters of a list URL cannot be applied, if they cannot: a value the column
    cannot hold ("abc" for a number, a date that is not one), an unknown operation or value.
    sqladmin would ignore such a filter silently and show the unfiltered table."""
    for column_filter in filters:
        name = column_filter.parameter_name
        title = column_filter.title
        value = params.get(name, "")
        if isinstance(column_filter, OperationColumnFilter):
            operation = params.get(f"{name}_op", "")
            if not value and not operation:
                continue
            column = getattr(model, name)
            options = dict(column_filter.get_operation_options_for_model(model))
            parameters = (name, f"{name}_op")
            if operation not in options:
                return FilterRefusal(
                    f"The filter on {title} has no operation {operation!r}: choose one of"
                    f" {', '.join(options.values())}.",
                    parameters,
                )
            label = options[operation].lower()
            if not value.strip():
                return FilterRefusal(f"The filter “{title} {label}” needs a value.", parameters)
            if "\x00" in value:
                return FilterRefusal(
                    f"The filter “{title} {label}” cannot hold a NUL character.", parameters
                )
            check = _expected(column, operation)
            if check is None:
                continue
            parse, expected = check
            try:
                parse(value.strip())
            except (ValueError, ArithmeticError):
                return FilterRefusal(
                    f"“{value}” is not a valid value for the filter “{title} {label}”:"
                    f" it expects {expected}.",
                    parameters,
                )
        elif value:
            allowed = {"all", "__all"} | (
                {"true", "false"}
                if isinstance(column_filter, BooleanFilter)
                else {str(v) for v, _ in getattr(column_filter, "values", [])}
            )
            if value not in allowed:
                choices = sorted(allowed - {"all", "__all"})
                return FilterRefusal(
                    f"“{value}” is not a valid value for the filter on {title}: choose one of"
                    f" {', '.join(choices)}.",
                    (name,),
                )
    return None


def view_options(table: AdminTable) -> dict[str, Any]:
    """The sqladmin class attributes of a table's view (pure: read from the model only)."""
    columns = _columns(table.model)
    names = [key for key, _ in columns]
    declared = {ref.column for ref in table.links} | {a for a, _ in table.amounts}
    declared |= set(table.periods) | set(table.list_hidden) | set(table.list_first)
    declared |= {column for column, _ in table.labels}
    unknown = (set(table.hidden) | set(table.editable) | declared) - set(names)
    if unknown:
        raise ValueError(f"{table.model.__name__} has no column(s) {sorted(unknown)}")
    if set(table.hidden) & set(table.editable):
        raise ValueError(f"{table.model.__name__}: a hidden column cannot be editable")
    if set(table.hidden) & declared:
        raise ValueError(f"{table.model.__name__}: a hidden column cannot be shown")
    visible = [(key, column) for key, column in columns if key not in table.hidden]
    shown = [key for key, _ in visible]
    linked = {ref.column for ref in table.links}
    labels = {key: column_label(key, linked=key in linked) for key in shown} | dict(table.labels)
    listed, detailed = formatters(table)
    return {
        # ``name`` (sqladmin's menus and the home page) is the table's title, as the plural;
        # ``row_name`` names one row ("Reward command 3f2b…", "Saved score log entry 12").
        "name": table.plural,
        "name_plural": table.plural,
        "row_name": table.one[:1].upper() + table.one[1:],
        "description": table.description,
        "stride_table": table,
        "icon": table.icon,
        "category": table.category,
        "column_list": [
            *table.list_first,
            *(k for k in shown if k not in table.list_hidden and k not in table.list_first),
        ],
        "column_details_list": shown,
        "column_export_list": shown,
        "column_labels": labels,
        "column_formatters": listed,
        "column_formatters_detail": detailed,
        "column_searchable_list": [key for key, column in visible if _is_searchable(column)],
        "column_sortable_list": [key for key in shown if key not in table.list_hidden],
        "column_filters": [
            f
            for key, column in visible
            if key not in table.list_hidden
            and (f := _column_filter(key, column, labels[key])) is not None
        ],
        "column_default_sort": [(key, True) for key, column in columns if column.primary_key],
        "form_columns": list(table.editable),
        "can_edit": bool(table.editable),
        "can_create": table.can_create,
        "can_delete": table.can_delete,
        "view_role": table.view_role,
        "change_role": table.change_role,
    }


class StrideFormConverter(ModelConverter):
    """sqladmin's form fields, plus floats (SQLAlchemy 2.1's Float is no longer a Numeric)."""

    @converts("Float", "Double")
    def conv_float(self, model: type, prop: Any, kwargs: dict[str, Any]) -> UnboundField:
        return FloatField(**kwargs)


SELF_EDIT_MESSAGE = "You cannot change your own role or active flag: ask another owner to do it."


# List parameters that choose a page, not rows: an export takes all pages.
PAGING_PARAMS = frozenset({"page", "pageSize", *CURSOR_PARAMS})


class StrideModelView(ScalableListView):
    """Common behaviour: generous pages, CSV export, role checks and an acting admin on writes,
    titles and descriptions, links between rows, checked filters, a message after a save."""

    view_role: ClassVar[AdminRole] = AdminRole.viewer
    change_role: ClassVar[AdminRole] = AdminRole.editor
    stride_table: ClassVar[AdminTable]
    description: ClassVar[str] = ""
    row_name: ClassVar[str] = ""
    list_template = "stride_list.html"
    page_size = 25
    page_size_options: ClassVar[list[int]] = [25, 50, 100, 200]
    can_view_details = True
    can_export = True
    export_types: ClassVar[list[str]] = ["csv", "json"]
    export_max_rows = EXPORT_MAX_ROWS
    form_converter = StrideFormConverter
    column_type_formatters: ClassVar[dict[type, Callable[[Any], Any]]] = {
        **BASE_FORMATTERS,
        datetime: time_text,
        Decimal: plain_decimal,
        uuid.UUID: short_id,
    }
    column_type_formatters_detail: ClassVar[dict[type, Callable[[Any], Any]]] = {
        **BASE_FORMATTERS,
        datetime: precise_time_text,
        Decimal: plain_decimal,
    }

    def list_query(self, request: Request) -> Select:
        return self._rows_seen(super().list_query(request), request)

    def details_query(self, request: Request) -> Select:
        return self._rows_seen(super().details_query(request), request)

    def _rows_seen(self, stmt: Select, request: Request) -> Select:
        """A table whose rows are about other tables (the audit log) shows a role only the
        rows about the tables that role may see: a viewer never learns of admin users."""
        column = self.stride_table.rows_about_table
        if not column:
            return stmt
        role = getattr(current_admin(request), "role", None)
        seen = [
            t.table_name
            for t in ADMIN_TABLES
            if role_allows(role, Action.LIST, view_role=t.view_role)
        ]
        return stmt.where(getattr(self.model, column).in_(seen))

    def search_query(self, stmt: Select, term: str) -> Select:
        """PostgreSQL text holds no NUL character: a search for one finds nothing, never a
        500 (the rest of the term is searched)."""
        return super().search_query(stmt, term.replace("\x00", ""))

    def _stmt_by_identifier(self, identifier: str) -> Select:
        """A row's URL with an id that is not one (``abc``, or beyond a 64-bit integer) is a
        404 page, not a 500."""
        try:
            values = object_identifier_values(identifier, self.model)
        except (ValueError, TypeError):
            raise HTTPException(404, f"{identifier!r} is not an id of this table") from None
        if any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in values):
            raise HTTPException(404, f"{identifier!r} is not an id of this table")
        return super()._stmt_by_identifier(identifier)

    async def filtered_query(self, request: Request) -> Select:
        """The list's query, refused with a 400 page when a filter value is not valid (the
        page offers the same list without that filter)."""
        refusal = filter_refusal(self.get_filters(), request.query_params, self.model)
        if refusal is not None:
            kept = [
                (k, v)
                for k, v in request.query_params.multi_items()
                if k not in refusal.parameters and k not in PAGING_PARAMS
            ]
            list_url_ = str(request.url_for("admin:list", identity=self.identity))
            request.state.stride_back_url = list_url_ + (f"?{urlencode(kept)}" if kept else "")
            request.state.stride_back_label = "Show the list without this filter"
            request.state.stride_error_title = "Invalid filter value"
            raise HTTPException(status_code=400, detail=refusal.message)
        return await super().filtered_query(request)

    async def list(self, request: Request) -> Pagination:
        pagination = await super().list(request)
        await self._load_labels(request, pagination.rows)
        return pagination

    async def get_object_for_details(self, request: Request) -> Any:
        obj = await super().get_object_for_details(request)
        if obj is not None:
            await self._load_labels(request, [obj])
        return obj

    async def _load_labels(self, request: Request, rows: Sequence[Any]) -> None:
        """The names of the rows this page links to (a game's name beside its id), in one
        query per linked table."""
        wanted: dict[str, set[Any]] = {}
        for ref in self.stride_table.links:
            if ref.table in LABELS and not ref.equals and ref.key in ((), (ref.column,)):
                values = {getattr(row, ref.column) for row in rows} - {None}
                wanted.setdefault(ref.table, set()).update(values)
        labels = dict(_labels(request))
        for table_name, values in wanted.items():
            if not values:
                continue
            key, name = LABELS[table_name]
            found = await self._run_arbitrary_query(select(key, name).where(key.in_(values)))
            labels |= {(table_name, str(k)): str(n) for k, n in found}
        request.state.stride_labels = labels

    def related_links(self, request: Request, obj: Any) -> Markup:
        """The "see also" links of a row's detail page (a game's players, events, ...)."""
        root = _root(request)
        links: builtins.list[tuple[str, str]] = []
        for related in self.stride_table.related:
            if related.page:
                fields = {k: quote(str(getattr(obj, k)), safe="") for k in _fields_of(related.page)}
                links.append((related.label, f"{root}/{related.page.format(**fields)}"))
            else:
                target = TABLES_BY_NAME.get(related.table)
                if target is None or not role_allows(
                    getattr(current_admin(request), "role", None),
                    Action.LIST,
                    view_role=target.view_role,
                ):
                    continue
                equals = [(t, getattr(obj, c)) for t, c in related.equals]
                links.append((related.label, list_url(root, target.identity, equals)))
        return display_related_links(links)

    async def get_model_objects(
        self, request: Request, limit: int | None = 0
    ) -> builtins.list[Any]:
        """What export writes: the rows of the list as the user sees it, every page of it."""
        stmt = self.sort_query(await self.filtered_query(request), request)
        with stopped_statements_explained():
            return builtins.list(await self._run_query(stmt.limit(limit or None)))

    async def list_context(self, request: Request) -> dict[str, Any]:
        kept = {k: v for k, v in request.query_params.multi_items() if k not in PAGING_PARAMS}
        query = f"?{urlencode(kept)}" if kept else ""
        urls = {
            kind: str(request.url_for("admin:export", identity=self.identity, export_type=kind))
            + query
            for kind in self.export_types
        }
        narrowing = self._narrowing(request)
        return {
            **await super().list_context(request),
            "export_urls": urls,
            "narrowed": bool(narrowing),
            "narrowing": narrowing,
            "unfiltered_url": str(request.url_for("admin:list", identity=self.identity)),
        }

    def _narrowing(self, request: Request) -> builtins.list[str]:
        """The search and filters of a list, as words: 'the search “x”', 'Score greater than
        “25”'."""
        params = request.query_params
        phrases = [f"the search “{params['search']}”"] if params.get("search") else []
        for column_filter in self.get_filters():
            value = params.get(column_filter.parameter_name)
            if not value or value in ("all", "__all"):
                continue
            if isinstance(column_filter, OperationColumnFilter):
                options = dict(column_filter.get_operation_options_for_model(self.model))
                operation = options.get(params.get(f"{column_filter.parameter_name}_op", ""), "")
                phrases.append(f"{column_filter.title} {operation.lower()} “{value}”")
            else:
                phrases.append(f"{column_filter.title} “{value}”")
        return phrases

    async def export_data(
        self, data: builtins.list[Any], export_type: str = "csv", request: Request | None = None
    ) -> StreamingResponse:
        names = self._export_prop_names
        if export_type == "json":

            async def objects() -> AsyncGenerator[str, None]:
                yield "["
                for i, row in enumerate(data):
                    values = {n: export_value(await self.get_prop_value(row, n)) for n in names}
                    yield ("," if i else "") + json.dumps(values, ensure_ascii=False, default=str)
                yield "]"

            return StreamingResponse(
                content=objects(),
                media_type="application/json",
                headers={
                    "Content-Disposition": "attachment;filename="
                    + secure_filename(self.get_export_name(export_type="json"))
                },
            )
        if export_type != "csv":
            return await super().export_data(data, export_type=export_type, request=request)

        async def rows(writer: Writer) -> AsyncGenerator[Any, None]:
            yield writer.writerow([csv_safe(name) for name in names])
            for row in data:
                yield writer.writerow(
                    [csv_safe(export_text(await self.get_prop_value(row, name))) for name in names]
                )

        filename = secure_filename(self.get_export_name(export_type="csv"))
        return StreamingResponse(
            content=stream_to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment;filename={filename}"},
        )

    def get_export_name(self, export_type: str) -> str:
        return f"{self.stride_table.table_name}_{time.strftime('%Y-%m-%d_%H-%M-%S')}.{export_type}"

    async def after_model_change(
        self, data: dict, model: Any, is_created: bool, request: Request
    ) -> None:
        """The page the editor lands on says what was saved."""
        verb = "Created" if is_created else "Saved"
        Flash.success(request, f"{verb} {self.stride_table.one} {get_object_identifier(model)}.")

    def _role_allows(self, request: Request, action: str) -> bool:
        admin = current_admin(request)
        return admin is not None and role_allows(
            admin.role, action, view_role=self.view_role, change_role=self.change_role
        )

    def has_permission(self, request: Request, action: str, obj: Any | None = None) -> bool:
        """Every sqladmin check (menu, routes, buttons) asks this: the table's roles first."""
        return self._role_allows(request, action) and super().has_permission(request, action, obj)

    def edit_refusal(self, request: Request, pk: str) -> str | None:
        """Why the signed-in admin may not edit row ``pk`` here, if that is why: their own
        admin user (so nobody raises their own role or locks themselves out)."""
        admin = current_admin(request)
        if self.model is AdminUser and admin is not None and pk == str(admin.id):
            return SELF_EDIT_MESSAGE
        return None

    async def check_can_edit(self, request: Request, model: Any) -> bool:
        own_row = self.model is AdminUser and self.edit_refusal(request, str(model.id))
        return not own_row and await super().check_can_edit(request, model)

    def _acting_username(self, request: Request, action: Action) -> str:
        # sqladmin checks the role before calling us; checked again so no path can skip it.
        admin = current_admin(request)
        if admin is None or not self._role_allows(request, action):
            raise HTTPException(status_code=403, detail=f"your role may not {action} rows here")
        return admin.username

    async def insert_model(self, request: Request, data: dict) -> Any:
        with acting_admin(self._acting_username(request, Action.CREATE)):
            return await super().insert_model(request, data)

    async def update_model(self, request: Request, pk: str, data: dict) -> Any:
        if refusal := self.edit_refusal(request, pk):
            raise HTTPException(status_code=403, detail=refusal)
        with acting_admin(self._acting_username(request, Action.EDIT)):
            return await super().update_model(request, pk, data)

    async def delete_model(self, request: Request, pk: Any) -> None:
        with acting_admin(self._acting_username(request, Action.DELETE)):
            await super().delete_model(request, pk)
        Flash.success(request, f"Deleted {self.stride_table.one} {pk}.")


def build_view(table: AdminTable) -> type[StrideModelView]:
    """A fresh sqladmin view class for ``table`` (fresh per mount: sqladmin stores state on it)."""
    options = view_options(table)
    view: type[StrideModelView] = types.new_class(
        f"{table.model.__name__}Admin",
        (StrideModelView,),
        {"model": table.model},
        lambda namespace: namespace.update(options),
    )
    view.identity = table.identity  # sqladmin's metaclass would slug the class name
    return view


def _page_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _fields_of(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def hidden_columns_by_table(tables: Iterable[AdminTable]) -> dict[str, tuple[str, ...]]:
    return {t.model.__tablename__: t.hidden for t in tables}
