"""The admin table registry: every table has a view, secrets never show, one line per table."""

from __future__ import annotations

import pytest
from sqladmin import ModelView
from sqladmin.filters import StaticValuesFilter
from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import core.models  # noqa: F401  (registers every table)
from api.admin.views import ADMIN_TABLES, AdminTable, build_view, view_options
from core.identity.models import AdminAuditLog, AdminRole, AdminUser
from core.platform.db import Base
from core.scores.models import ScoreLog

COLUMN_LISTS = ("column_list", "column_details_list", "column_export_list")


def test_every_table_of_the_application_has_an_admin_view() -> None:
    registered = {t.model.__tablename__ for t in ADMIN_TABLES}
    missing = set(Base.metadata.tables) - registered
    assert not missing, f"add AdminTable(...) lines to api/admin/views.py for {sorted(missing)}"


@pytest.mark.parametrize("table", ADMIN_TABLES, ids=lambda t: t.model.__tablename__)
def test_hidden_columns_never_reach_a_page(table: AdminTable) -> None:
    options = view_options(table)
    for secret in table.hidden:
        for key in (*COLUMN_LISTS, "column_searchable_list", "column_sortable_list"):
            assert secret not in options[key]
        assert secret not in options["form_columns"]
        assert all(f.parameter_name != secret for f in options["column_filters"])


def test_secret_columns_are_hidden() -> None:
    hidden = {t.model.__tablename__: set(t.hidden) for t in ADMIN_TABLES}
    assert "password_hash" in hidden["admin_users"]
    assert "api_key_hash" in hidden["games"]
    assert "token_hash" in hidden["app_users"]


def test_admin_users_may_change_role_and_status_only() -> None:
    options = view_options(next(t for t in ADMIN_TABLES if t.model is AdminUser))
    assert options["form_columns"] == ["role", "is_active"]
    assert options["can_edit"] and not options["can_create"] and not options["can_delete"]
    assert "username" in options["column_searchable_list"]
    [role_filter] = [f for f in options["column_filters"] if f.parameter_name == "role"]
    assert isinstance(role_filter, StaticValuesFilter)
    assert [v for v, _ in role_filter.values] == ["viewer", "editor", "owner"]
    assert (options["view_role"], options["change_role"]) == (AdminRole.editor, AdminRole.owner)


def test_viewers_see_no_admin_table_but_the_audit_log() -> None:
    seen_by_viewers = {
        t.model.__tablename__ for t in ADMIN_TABLES if t.view_role is AdminRole.viewer
    }
    assert {"admin_users", "admin_sessions", "admin_login_attempts"}.isdisjoint(seen_by_viewers)
    assert {"score_log", "processed_events", "admin_audit_log"} <= seen_by_viewers


def test_audit_log_is_read_only() -> None:
    options = view_options(next(t for t in ADMIN_TABLES if t.model is AdminAuditLog))
    assert not options["can_edit"] and not options["can_create"] and not options["can_delete"]
    assert options["column_default_sort"] == [("id", True)]


def test_a_new_table_gets_a_browsable_read_only_view_in_one_line() -> None:
    class Other(DeclarativeBase):
        pass

    class Widget(Other):
        __tablename__ = "widgets"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        label: Mapped[str] = mapped_column(String(32))
        secret: Mapped[str] = mapped_column(String(64))
        enabled: Mapped[bool] = mapped_column(Boolean)

    view = build_view(AdminTable(Widget, hidden=("secret",)))  # type: ignore[arg-type]
    assert issubclass(view, ModelView)
    assert view.model is Widget
    assert view.identity == "widgets"
    assert view.column_list == ["id", "label", "enabled"]
    assert view.column_searchable_list == ["label"]
    assert not view.can_edit


def test_registry_mistakes_fail_loudly() -> None:
    with pytest.raises(ValueError, match="no column"):
        view_options(AdminTable(ScoreLog, editable=("nope",)))
    with pytest.raises(ValueError, match="hidden column cannot be editable"):
        view_options(AdminTable(AdminUser, hidden=("password_hash",), editable=("password_hash",)))
