"""The tables the admin panel shows, declared once in ``ADMIN_TABLES``.

A new table gets its view with one line: ``AdminTable(MyModel)`` (read-only by default).
Every view lists, searches, sorts, filters and exports its visible columns; ``hidden``
columns (secrets) never appear in lists, details, exports, search, forms or audit rows.
Editors may change the ``editable`` columns; each change is audited (see ``api.admin.audit``).
"""

from __future__ import annotations

import enum
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from sqladmin import ModelView
from sqladmin.authorization import Action
from sqladmin.filters import BooleanFilter, OperationColumnFilter, StaticValuesFilter
from sqladmin.forms import ModelConverter, converts
from sqlalchemy import JSON, Boolean, DateTime, Enum, Numeric, String, Text, Uuid, inspect
from sqlalchemy.sql.sqltypes import Float, Integer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from wtforms import FloatField
from wtforms.fields.core import UnboundField

from api.admin.audit import acting_admin
from api.admin.auth import current_admin, role_allows
from core.db import Base
from core.models import AdminAuditLog, AdminUser, ScoreLog

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


ADMIN_TABLES: tuple[AdminTable, ...] = (
    AdminTable(
        ScoreLog,
        editable=("user_id", "input_value", "score", "formula_version"),
        can_delete=True,
        icon="fa-solid fa-chart-line",
    ),
    AdminTable(AdminAuditLog, icon="fa-solid fa-clipboard-list"),
    AdminTable(
        AdminUser,
        hidden=("password_hash",),
        editable=("role", "is_active"),
        icon="fa-solid fa-user-shield",
    ),
)


def _columns(model: type[Base]) -> list[Any]:
    return [attr.columns[0] for attr in inspect(model).column_attrs]


def _is_searchable(column: Any) -> bool:
    return isinstance(column.type, String | Text | Uuid | JSON)


def _column_filter(column: Any) -> Any | None:
    kind = column.type
    if isinstance(kind, Boolean):
        return BooleanFilter(column.key)
    if isinstance(kind, Enum) and kind.enum_class is not None:
        members: Iterable[enum.Enum] = kind.enum_class
        return StaticValuesFilter(column.key, values=[(m.value, m.value) for m in members])
    if isinstance(kind, String | Text | Integer | Numeric | Float | DateTime | Uuid):
        return OperationColumnFilter(column.key)
    return None


def view_options(table: AdminTable) -> dict[str, Any]:
    """The sqladmin class attributes of a table's view (pure: read from the model only)."""
    columns = _columns(table.model)
    names = [c.key for c in columns]
    unknown = (set(table.hidden) | set(table.editable)) - set(names)
    if unknown:
        raise ValueError(f"{table.model.__name__} has no column(s) {sorted(unknown)}")
    if set(table.hidden) & set(table.editable):
        raise ValueError(f"{table.model.__name__}: a hidden column cannot be editable")
    visible = [c for c in columns if c.key not in table.hidden]
    pk = [c.key for c in columns if c.primary_key]
    return {
        "name": table.model.__tablename__,
        "name_plural": table.model.__tablename__,
        "icon": table.icon,
        "column_list": [c.key for c in visible],
        "column_details_list": [c.key for c in visible],
        "column_export_list": [c.key for c in visible],
        "column_searchable_list": [c.key for c in visible if _is_searchable(c)],
        "column_sortable_list": [c.key for c in visible],
        "column_filters": [f for c in visible if (f := _column_filter(c)) is not None],
        "column_default_sort": [(key, True) for key in pk],
        "form_columns": list(table.editable),
        "can_edit": bool(table.editable),
        "can_create": table.can_create,
        "can_delete": table.can_delete,
    }


class StrideFormConverter(ModelConverter):
    """sqladmin's form fields, plus floats (SQLAlchemy 2.1's Float is no longer a Numeric)."""

    @converts("Float", "Double")
    def conv_float(self, model: type, prop: Any, kwargs: dict[str, Any]) -> UnboundField:
        return FloatField(**kwargs)


class StrideModelView(ModelView):
    """Common behaviour: generous pages, CSV export, role checks and an acting admin on writes."""

    page_size = 25
    page_size_options: ClassVar[list[int]] = [25, 50, 100, 200]
    can_view_details = True
    can_export = True
    export_types: ClassVar[list[str]] = ["csv", "json"]
    export_max_rows = EXPORT_MAX_ROWS
    form_converter = StrideFormConverter

    def _acting_username(self, request: Request, action: Action) -> str:
        # sqladmin checks the role before calling us; checked again so no path can skip it.
        admin = current_admin(request)
        if admin is None or not role_allows(admin.role, action):
            raise HTTPException(status_code=403, detail=f"your role may not {action} rows")
        return admin.username

    async def insert_model(self, request: Request, data: dict) -> Any:
        with acting_admin(self._acting_username(request, Action.CREATE)):
            return await super().insert_model(request, data)

    async def update_model(self, request: Request, pk: str, data: dict) -> Any:
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
