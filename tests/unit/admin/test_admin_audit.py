"""The audit trail's pure parts: JSON-safe row snapshots, secrets left out, diffs."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from api.admin.audit import changed_columns, format_pk, jsonable, row_snapshot
from core.identity.models import AdminRole


def test_jsonable_renders_every_column_type_as_json() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert jsonable(datetime(2026, 11, 22, 3, 0, tzinfo=UTC)) == "2026-11-22T03:00:00+00:00"
    assert jsonable(date(2026, 11, 22)) == "2026-11-22"
    assert jsonable(ident) == "12345678-1234-5678-1234-567812345678"
    assert jsonable(Decimal("1.500000000000000000")) == "1.500000000000000000"
    assert jsonable(AdminRole.editor) == "editor"
    assert type(jsonable(AdminRole.editor)) is str
    assert jsonable(float("nan")) == "nan"
    assert jsonable(b"\x00\xff") == "00ff"
    assert jsonable({"when": date(2026, 1, 1), "ids": (ident,)}) == {
        "when": "2026-01-01",
        "ids": [str(ident)],
    }
    assert jsonable(None) is None
    assert jsonable(True) is True


def test_snapshot_leaves_hidden_columns_out() -> None:
    snapshot = row_snapshot(
        {"username": "ana", "password_hash": "$2b$12$secret", "role": AdminRole.viewer},
        hidden=("password_hash",),
    )
    assert snapshot == {"role": "viewer", "username": "ana"}


def test_changed_columns_names_what_differs() -> None:
    before = {"score": 40.0, "user_id": "p1", "formula_version": 1}
    after = {"score": 77.5, "user_id": "p1", "formula_version": 1}
    assert changed_columns(before, after) == ["score"]
    assert changed_columns(before, dict(before)) == []
    assert changed_columns({"a": 1}, {"b": 1}) == ["a", "b"]


def test_format_pk_matches_sqladmin_urls() -> None:
    assert format_pk((42,)) == "42"
    assert format_pk(("board", "2026-11-01T00:00:00+00:00", "p1")) == (
        "board;2026-11-01T00:00:00+00:00;p1"
    )
