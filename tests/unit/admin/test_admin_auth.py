"""Roles, the cross-origin guard and the session cookie flags of the admin panel."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqladmin.authorization import Action

from api.admin.auth import (
    is_cross_origin,
    role_allows,
    session_cookie_options,
)
from core.identity.models import AdminRole
from core.platform.config import Settings


@pytest.mark.parametrize("action", [Action.LIST, Action.DETAILS, Action.EXPORT])
def test_viewers_browse_and_export(action: Action) -> None:
    assert role_allows(AdminRole.viewer, action)
    assert role_allows(AdminRole.editor, action)


@pytest.mark.parametrize(
    "action", [Action.CREATE, Action.EDIT, Action.DELETE, Action.IMPORT, "action:purge"]
)
def test_only_editors_change_rows(action: str) -> None:
    assert not role_allows(AdminRole.viewer, action)
    assert role_allows(AdminRole.editor, action)


def test_nobody_signed_in_may_do_nothing() -> None:
    assert not any(role_allows(None, a) for a in Action)


@pytest.mark.parametrize("action", list(Action))
def test_owners_may_do_what_editors_may(action: Action) -> None:
    assert role_allows(AdminRole.owner, action) == role_allows(AdminRole.editor, action)


def test_a_table_only_owners_change() -> None:
    rules = {"view_role": AdminRole.editor, "change_role": AdminRole.owner}
    assert not role_allows(AdminRole.viewer, Action.LIST, **rules)
    assert role_allows(AdminRole.editor, Action.LIST, **rules)
    assert not role_allows(AdminRole.editor, Action.EDIT, **rules)
    assert role_allows(AdminRole.owner, Action.EDIT, **rules)


def test_a_table_viewers_do_not_see() -> None:
    for action in Action:
        assert not role_allows(AdminRole.viewer, action, view_role=AdminRole.editor)
    assert role_allows(AdminRole.editor, Action.EXPORT, view_role=AdminRole.editor)
    assert not role_allows(AdminRole.editor, Action.LIST, view_role=AdminRole.owner)


@pytest.mark.parametrize(
    ("origin", "referer", "hosts", "cross"),
    [
        ("http://127.0.0.1:8000", None, ["127.0.0.1:8000"], False),
        ("https://admin.stride.test", None, ["ADMIN.stride.test"], False),
        (None, "http://127.0.0.1:8000/admin/query", ["127.0.0.1:8000"], False),
        (None, None, ["127.0.0.1:8000"], False),
        ("https://admin.stride.test", None, ["api:8000", "admin.stride.test"], False),
        ("https://evil.example", None, ["127.0.0.1:8000"], True),
        ("http://127.0.0.1:9999", None, ["127.0.0.1:8000"], True),
        (None, "https://evil.example/page", ["127.0.0.1:8000"], True),
        ("null", None, ["127.0.0.1:8000"], True),
        ("https://evil.example", "http://127.0.0.1:8000/admin", ["127.0.0.1:8000"], True),
        ("https://evil.example", None, [None, None], True),
    ],
)
def test_cross_origin_detection(
    origin: str | None, referer: str | None, hosts: list[str | None], cross: bool
) -> None:
    assert is_cross_origin(origin, referer, hosts) is cross


def test_session_cookie_is_strict_and_secure_outside_the_local_stack(tmp_path: Path) -> None:
    local = session_cookie_options(Settings(env="local", state_dir=tmp_path))
    prod = session_cookie_options(Settings(env="prod", state_dir=tmp_path))
    assert local["same_site"] == prod["same_site"] == "strict"
    assert local["path"] == "/admin"
    assert local["https_only"] is False
    assert prod["https_only"] is True
