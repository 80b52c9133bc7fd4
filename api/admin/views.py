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
"""

from __future__ import annotations

import enum
import types
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

from sqladmin.authorization import Action
from sqladmin.filters import (
    BooleanFilter,
    OperationColumnFilter,
    StaticValuesFilter,
)
from sqladmin.forms import ModelConverter, converts
from sqladmin.helpers import Writer, object_identifier_values, secure_filename, stream_to_csv
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Numeric,
    String,
    Text,
    Uuid,
    inspect,
)
from sqlalchemy.sql import Select
from sqlalchemy.sql.sqltypes import Float, Integer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse
from wtforms import FloatField
from wtforms.fields.core import UnboundField

from api.admin.audit import acting_admin
from api.admin.auth import current_admin, role_allows
from api.admin.listing import CURSOR_PARAMS, ScalableListView, stopped_statements_explained
from api.admin.query import csv_safe
from core.chain.models import (
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
from core.events.models import Game, PlayerTotals, ProcessedEvent, RewardCommandRow
from core.identity.models import (
    AdminAuditLog,
    AdminLoginAttempt,
    AdminRole,
    AdminSession,
    AdminUser,
    AppUser,
)
from core.leaderboards.models import (
    Leaderboard,
    LeaderboardPeriod,
    LeaderboardRankBlock,
    LeaderboardRecord,
    LeaderboardSubmission,
)
from core.platform.db import Base
from core.scores.models import ScoreLog

EXPORT_MAX_ROWS = 100_000


@dataclass(frozen=True)
class AdminTable:
    """How one table appears in the admin panel."""

    model: type[Base]
    hidden: tuple[str, ...] = ()
    # Columns editors may change; empty means read-only for everyone.
    editable: tuple[str, ...] = ()
    can_create: bool = False
    can_delete: bool = False
    icon: str = "fa-solid fa-table"
    category: str = ""  # menu group
    view_role: AdminRole = AdminRole.viewer  # the lowest role that sees the table at all
    change_role: AdminRole = AdminRole.editor  # the lowest role that may change it


ADMIN_TABLES: tuple[AdminTable, ...] = (
    AdminTable(
        ScoreLog,
        editable=("user_id", "input_value", "score", "formula_version"),
        can_delete=True,
        icon="fa-solid fa-chart-line",
    ),
    AdminTable(
        Game,
        hidden=("api_key_hash",),
        editable=("name", "is_active"),
        icon="fa-solid fa-gamepad",
        category="Games",
    ),
    # Written by the stream processors and the leaderboard writer: read-only here, since a
    # hand edit would break their invariants (idempotency keys, rank block sizes).
    AdminTable(ProcessedEvent, icon="fa-solid fa-bolt", category="Games"),
    AdminTable(PlayerTotals, icon="fa-solid fa-calculator", category="Games"),
    AdminTable(RewardCommandRow, icon="fa-solid fa-coins", category="Games"),
    AdminTable(Leaderboard, icon="fa-solid fa-trophy", category="Leaderboards"),
    AdminTable(LeaderboardPeriod, icon="fa-solid fa-calendar", category="Leaderboards"),
    AdminTable(LeaderboardRecord, icon="fa-solid fa-ranking-star", category="Leaderboards"),
    AdminTable(LeaderboardSubmission, icon="fa-solid fa-inbox", category="Leaderboards"),
    AdminTable(LeaderboardRankBlock, icon="fa-solid fa-layer-group", category="Leaderboards"),
    AdminTable(
        AppUser,
        hidden=("token_hash",),
        editable=("is_active",),
        icon="fa-solid fa-mobile-screen",
        category="App users",
    ),
    # Who may do what: only owners change roles and active flags (audited), never their own.
    AdminTable(
        AdminUser,
        hidden=("password_hash",),
        editable=("role", "is_active"),
        icon="fa-solid fa-user-shield",
        category="Admin",
        view_role=AdminRole.editor,
        change_role=AdminRole.owner,
    ),
    # Deleting a session signs it out (audited like any delete); its token hash never shows.
    AdminTable(
        AdminSession,
        hidden=("token_hash",),
        can_delete=True,
        icon="fa-solid fa-id-card",
        category="Admin",
        view_role=AdminRole.owner,
        change_role=AdminRole.owner,
    ),
    AdminTable(AdminAuditLog, icon="fa-solid fa-clipboard-list", category="Admin"),
    # Client IP addresses: personal data, hidden from viewers as from the SQL page.
    AdminTable(
        AdminLoginAttempt,
        icon="fa-solid fa-user-lock",
        category="Admin",
        view_role=AdminRole.editor,
    ),
    # Operators name collections (contracts per chain) for the app's NFT filter.
    AdminTable(
        NftCollection,
        editable=("name", "contract"),
        can_create=True,
        can_delete=True,
        icon="fa-solid fa-images",
        category="Chain",
    ),
    # Written by the chain indexer and the projections agent: read-only (a hand edit would
    # break the reorg window, the outbox order or the idempotency keys).
    AdminTable(TokenBalance, icon="fa-solid fa-coins", category="Chain"),
    AdminTable(NftBalance, icon="fa-solid fa-gem", category="Chain"),
    AdminTable(NftMetadata, icon="fa-solid fa-tags", category="Chain"),
    AdminTable(ContractFacts, icon="fa-solid fa-file-contract", category="Chain"),
    AdminTable(ChainLogRow, icon="fa-solid fa-list", category="Chain"),
    AdminTable(ChainCursor, icon="fa-solid fa-forward", category="Chain"),
    AdminTable(ChainProjectionHead, icon="fa-solid fa-flag", category="Chain"),
    AdminTable(ChainBlock, icon="fa-solid fa-cube", category="Chain"),
    AdminTable(ChainWindowLog, icon="fa-solid fa-clock-rotate-left", category="Chain"),
    AdminTable(ChainOutbox, icon="fa-solid fa-paper-plane", category="Chain"),
)


def _columns(model: type[Base]) -> list[tuple[str, Any]]:
    """(attribute name, column) of every mapped column; sqladmin speaks attribute names."""
    return [(attr.key, attr.columns[0]) for attr in inspect(model).column_attrs]


def _is_searchable(column: Any) -> bool:
    return isinstance(column.type, String | Text | Uuid | JSON)


def _column_filter(key: str, column: Any) -> Any | None:
    kind = column.type
    if isinstance(kind, Boolean):
        return BooleanFilter(key)
    if isinstance(kind, Enum) and kind.enum_class is not None:
        members: Iterable[enum.Enum] = kind.enum_class
        return StaticValuesFilter(key, values=[(m.value, m.value) for m in members])
    if isinstance(kind, String | Text | Integer | Numeric | Float | DateTime):
        return OperationColumnFilter(key)
    return None  # ids (UUIDs) are found with the search box; JSON has no useful operator


def view_options(table: AdminTable) -> dict[str, Any]:
    """The sqladmin class attributes of a table's view (pure: read from the model only)."""
    columns = _columns(table.model)
    names = [key for key, _ in columns]
    unknown = (set(table.hidden) | set(table.editable)) - set(names)
    if unknown:
        raise ValueError(f"{table.model.__name__} has no column(s) {sorted(unknown)}")
    if set(table.hidden) & set(table.editable):
        raise ValueError(f"{table.model.__name__}: a hidden column cannot be editable")
    visible = [(key, column) for key, column in columns if key not in table.hidden]
    shown = [key for key, _ in visible]
    return {
        "name": table.model.__tablename__,
        "name_plural": table.model.__tablename__,
        "icon": table.icon,
        "category": table.category,
        "column_list": shown,
        "column_details_list": shown,
        "column_export_list": shown,
        "column_searchable_list": [key for key, column in visible if _is_searchable(column)],
        "column_sortable_list": shown,
        "column_filters": [
            f
            for key, column in visible
            if not column.primary_key and (f := _column_filter(key, column)) is not None
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
    """Common behaviour: generous pages, CSV export, role checks and an acting admin on writes."""

    view_role: ClassVar[AdminRole] = AdminRole.viewer
    change_role: ClassVar[AdminRole] = AdminRole.editor
    list_template = "stride_list.html"
    page_size = 25
    page_size_options: ClassVar[list[int]] = [25, 50, 100, 200]
    can_view_details = True
    can_export = True
    export_types: ClassVar[list[str]] = ["csv", "json"]
    export_max_rows = EXPORT_MAX_ROWS
    form_converter = StrideFormConverter

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

    async def get_model_objects(self, request: Request, limit: int | None = 0) -> list[Any]:
        """What export writes: the rows of the list as the user sees it, every page of it."""
        stmt = self.sort_query(await self.filtered_query(request), request)
        with stopped_statements_explained():
            return list(await self._run_query(stmt.limit(limit or None)))

    async def list_context(self, request: Request) -> dict[str, Any]:
        kept = {k: v for k, v in request.query_params.multi_items() if k not in PAGING_PARAMS}
        query = f"?{urlencode(kept)}" if kept else ""
        urls = {
            kind: str(request.url_for("admin:export", identity=self.identity, export_type=kind))
            + query
            for kind in self.export_types
        }
        return {**await super().list_context(request), "export_urls": urls}

    async def export_data(
        self, data: list[Any], export_type: str = "csv", request: Request | None = None
    ) -> StreamingResponse:
        if export_type != "csv":
            return await super().export_data(data, export_type=export_type, request=request)
        names = self._export_prop_names

        async def rows(writer: Writer) -> AsyncGenerator[Any, None]:
            yield writer.writerow([csv_safe(name) for name in names])
            for row in data:
                yield writer.writerow(
                    [csv_safe(str(await self.get_prop_value(row, name))) for name in names]
                )

        filename = secure_filename(self.get_export_name(export_type="csv"))
        return StreamingResponse(
            content=stream_to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment;filename={filename}"},
        )

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


def build_view(table: AdminTable) -> type[StrideModelView]:
    """A fresh sqladmin view class for ``table`` (fresh per mount: sqladmin stores state on it)."""
    options = view_options(table)
    return types.new_class(
        f"{table.model.__name__}Admin",
        (StrideModelView,),
        {"model": table.model},
        lambda namespace: namespace.update(options),
    )


def hidden_columns_by_table(tables: Iterable[AdminTable]) -> dict[str, tuple[str, ...]]:
    return {t.model.__tablename__: t.hidden for t in tables}
