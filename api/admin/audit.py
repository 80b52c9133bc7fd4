"""The admin audit trail: every row the admin panel creates, edits or deletes gets one
``admin_audit_log`` row written by the same flush, so change and audit commit or fail together.

The acting admin reaches the worker thread that runs sqladmin's session through a context
variable (anyio copies the context into ``to_thread`` calls). A write through the admin
session with no acting admin is refused rather than left unaudited.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from core.identity.models import AdminAuditLog

AuditAction = Literal["create", "edit", "delete"]

_acting_admin: ContextVar[str | None] = ContextVar("stride_acting_admin", default=None)


class UnauditedWriteError(RuntimeError):
    """A write reached the admin session without an acting admin to record."""


@contextmanager
def acting_admin(username: str) -> Iterator[None]:
    """Attribute every admin-session write made inside the block to ``username``."""
    token = _acting_admin.set(username)
    try:
        yield
    finally:
        _acting_admin.reset(token)


@dataclass(frozen=True)
class AuditRecord:
    action: AuditAction
    table_name: str
    row_pk: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def jsonable(value: Any) -> Any:
    """A JSON (and JSONB) safe rendering of a column value."""
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def row_snapshot(values: Mapping[str, Any], hidden: Collection[str] = ()) -> dict[str, Any]:
    """The audited picture of a row: JSON-safe values, hidden (secret) columns left out."""
    return {key: jsonable(values[key]) for key in sorted(values) if key not in hidden}


def changed_columns(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Columns whose value differs between two snapshots (missing counts as a change)."""
    missing = object()
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k, missing) != after.get(k, missing)]


@dataclass(frozen=True)
class FieldChange:
    """One field an audited change touched: its value before and after (``had_before`` /
    ``has_after`` say whether the field existed on each side: a created row had none)."""

    field: str
    before: Any
    after: Any
    had_before: bool
    has_after: bool


def field_diff(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[FieldChange]:
    """The fields that differ between an audit row's ``before`` and ``after``, in name order:
    every field of a created row (nothing before) or a deleted one (nothing after)."""
    old, new = before or {}, after or {}
    return [
        FieldChange(key, old.get(key), new.get(key), key in old, key in new)
        for key in changed_columns(old, new)
    ]


def format_pk(values: Collection[Any]) -> str:
    """The primary key as sqladmin spells it in URLs (composite keys joined by ``;``)."""
    return ";".join(str(v) for v in values)


def _column_values(obj: Any, *, before: bool) -> dict[str, Any]:
    """Loaded column values of an ORM object, as they were before the flush or are now."""
    state = inspect(obj)
    values: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        if attr.key not in state.dict and not before:
            continue  # server-generated, not loaded yet: not known without another query
        if before:
            history = state.attrs[attr.key].history
            if history.deleted:
                values[attr.key] = history.deleted[0]
            elif history.unchanged:
                values[attr.key] = history.unchanged[0]
            elif attr.key in state.dict and not history.added:
                values[attr.key] = state.dict[attr.key]
        else:
            values[attr.key] = state.dict[attr.key]
    return values


def pending_audit_records(
    session: Session, hidden_by_table: Mapping[str, Collection[str]]
) -> list[AuditRecord]:
    """What the flush that just ran changed, one record per row (called from after_flush)."""
    records: list[AuditRecord] = []

    def record(obj: Any, action: AuditAction, before: Any, after: Any) -> None:
        mapper = inspect(obj).mapper
        records.append(
            AuditRecord(
                action=action,
                table_name=mapper.local_table.name,
                row_pk=format_pk(mapper.primary_key_from_instance(obj)),
                before=before,
                after=after,
            )
        )

    def hidden(obj: Any) -> Collection[str]:
        return hidden_by_table.get(inspect(obj).mapper.local_table.name, ())

    for obj in session.new:
        if not isinstance(obj, AdminAuditLog):
            record(
                obj, "create", None, row_snapshot(_column_values(obj, before=False), hidden(obj))
            )
    for obj in session.dirty:
        if isinstance(obj, AdminAuditLog) or not session.is_modified(obj):
            continue
        before = row_snapshot(_column_values(obj, before=True), hidden(obj))
        after = row_snapshot(_column_values(obj, before=False), hidden(obj))
        if changed_columns(before, after):
            record(obj, "edit", before, after)
    for obj in session.deleted:
        if not isinstance(obj, AdminAuditLog):
            record(obj, "delete", row_snapshot(_column_values(obj, before=True), hidden(obj)), None)
    return records


def install_audit_trail(
    admin_sessions: sessionmaker[Any], hidden_by_table: Mapping[str, Collection[str]]
) -> None:
    """Make every flush of ``admin_sessions`` write its audit rows in the same transaction."""

    @event.listens_for(admin_sessions, "after_flush")
    def _write_audit_rows(session: Session, _flush_context: Any) -> None:
        records = pending_audit_records(session, hidden_by_table)
        if not records:
            return
        admin = _acting_admin.get()
        if admin is None:
            raise UnauditedWriteError(
                "refusing an admin-panel write with no logged-in admin to record it"
            )
        session.connection().execute(
            cast(Table, AdminAuditLog.__table__).insert(),
            [
                {
                    "admin_username": admin,
                    "action": r.action,
                    "table_name": r.table_name,
                    "row_pk": r.row_pk,
                    "before": r.before,
                    "after": r.after,
                }
                for r in records
            ],
        )
