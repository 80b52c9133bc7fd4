"""How values read on the admin pages (pure functions, no services): amounts, JSON, periods,
row URLs, audit diffs, export values, filter refusals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from api.admin.audit import FieldChange, field_diff
from api.admin.display import (
    amount_text,
    details_url,
    diff_markup,
    json_cell,
    json_text,
    list_url,
    period_text,
    plain_decimal,
    short_id,
    status_badge,
)
from api.admin.views import (
    ADMIN_TABLES,
    column_label,
    export_text,
    export_value,
    filter_refusal,
    view_options,
)
from core.leaderboards.rules import EPOCH
from core.scores.models import ScoreLog


@pytest.mark.parametrize(
    ("value", "token", "shown"),
    [
        (Decimal("10.000000000000000000"), "STRIDE", "10 STRIDE"),
        (Decimal("0E-18"), "STRIDE", "0 STRIDE"),
        (Decimal("1234.500000000000000000"), "STRIDE", "1,234.5 STRIDE"),
        (Decimal("0.000000000000000001"), "GEM", "0.000000000000000001 GEM"),
        (Decimal("1E+3"), "STRIDE", "1,000 STRIDE"),
        (None, "STRIDE", ""),
    ],
)
def test_amounts_read_with_their_token(value: Decimal | None, token: str, shown: str) -> None:
    assert amount_text(value, token) == shown


def test_exports_keep_plain_machine_readable_values() -> None:
    assert plain_decimal(Decimal("0E-18")) == "0"
    assert plain_decimal(Decimal("10.000000000000000000")) == "10"
    assert plain_decimal(Decimal("1E+3")) == "1000"
    assert export_value(Decimal("2.50")) == "2.5"
    moment = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert export_value(moment) == "2026-12-01T14:00:00+00:00"
    assert export_text({"level": None}) == '{"level": null}'
    assert export_text(None) == ""


def test_json_reads_as_json_not_python() -> None:
    assert json_text({"level": None, "ok": True}) == '{"level": null, "ok": true}'
    cell = str(json_cell({"note": "x" * 200}))
    shown = cell.split('">', 1)[1].removesuffix("</code>")
    assert len(shown.replace("&#34;", '"')) == 80 and shown.endswith("…")  # cut in the cell
    assert cell.count("x") == 200 + 69  # the whole in the tooltip
    assert str(json_cell({"html": "<b>"})).count("<b>") == 0  # escaped


def test_the_all_time_period_reads_all_time() -> None:
    assert period_text(EPOCH) == "All time"
    assert period_text(datetime(2026, 11, 30, tzinfo=UTC)) == "2026-11-30 00:00 UTC"
    assert period_text(None) == ""


def test_row_urls_follow_the_table_names_and_sqladmin_keys() -> None:
    root = "http://x/admin"
    event = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert details_url(root, "processed-events", ["tri", event]) == (
        f"http://x/admin/processed-events/details/tri;{event}"
    )
    assert details_url(root, "player-totals", ["a;b", "c d"]) == (
        "http://x/admin/player-totals/details/a%5C;b;c%20d"  # ";" in a part is escaped
    )
    assert list_url(root, "reward-commands", [("game_id", "tri")]) == (
        "http://x/admin/reward-commands/list?game_id=tri&game_id_op=equals"
    )
    assert str(short_id(event)).endswith(">12345678…</span>")


def test_an_audit_diff_holds_only_the_changed_fields() -> None:
    before = {"id": 1, "score": 20.0, "user_id": "p"}
    after = {"id": 1, "score": 123.25, "user_id": "p"}
    assert field_diff(before, after) == [FieldChange("score", 20.0, 123.25, True, True)]
    created = field_diff(None, {"id": 2, "score": 1.0})
    assert [(c.field, c.had_before, c.has_after) for c in created] == [
        ("id", False, True),
        ("score", False, True),
    ]
    shown = str(diff_markup(field_diff(before, after), action="edit", compact=True))
    assert "<strong>score</strong>: <code>20.0</code> → <code>123.25</code>" in shown
    assert "user_id" not in shown


def test_column_headings_read_as_words() -> None:
    assert column_label("game_id") == "Game ID"
    assert column_label("game_id", linked=True) == "Game"
    assert column_label("source_event_id", linked=True) == "Source event"
    assert column_label("api_key_prefix") == "API key prefix"
    assert column_label("metadata_") == "Metadata"


def _score_filters() -> list:
    table = next(t for t in ADMIN_TABLES if t.model is ScoreLog)
    return view_options(table)["column_filters"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"score": "abc", "score_op": "greater_than"}, "it expects a number"),
        ({"score": "nan", "score_op": "greater_than"}, "it expects a number"),
        ({"formula_version": "40000", "formula_version_op": "equals"}, "between -32,768"),
        ({"created_at": "31/12/2026", "created_at_op": "less_than"}, "it expects a date"),
        ({"user_id": "a\x00b", "user_id_op": "contains"}, "NUL character"),
        ({"score": "1", "score_op": "drop_table"}, "has no operation"),
        ({"score": "", "score_op": "equals"}, "needs a value"),
    ],
)
def test_filter_values_the_column_cannot_hold_are_refused(
    params: dict[str, str], expected: str
) -> None:
    refusal = filter_refusal(_score_filters(), params, ScoreLog)
    assert refusal is not None and expected in refusal.message
    assert set(refusal.parameters) <= set(params) | {f"{next(iter(params))}_op"}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"score": "2.5", "score_op": "greater_than"},
        {"created_at": "2026-11-30", "created_at_op": "greater_than"},
        {"created_at": "2026-11-30 14:00", "created_at_op": "less_than"},
        {"request_id": "12345678", "request_id_op": "starts_with"},
        {"user_id": "player", "user_id_op": "contains"},
    ],
)
def test_valid_filter_values_pass(params: dict[str, str]) -> None:
    assert filter_refusal(_score_filters(), params, ScoreLog) is None


def test_listed_values_are_checked_too() -> None:
    admin_users = next(t for t in ADMIN_TABLES if t.table_name == "admin_users")
    filters = view_options(admin_users)["column_filters"]
    assert filter_refusal(filters, {"role": "owner"}, admin_users.model) is None
    refused = filter_refusal(filters, {"is_active": "maybe"}, admin_users.model)
    assert refused is not None and "choose one of false, true" in refused.message


def test_a_failed_reward_command_stands_out() -> None:
    assert str(status_badge("failed")) == '<span class="badge bg-red-lt">failed</span>'
    assert "bg-yellow-lt" in str(status_badge("pending"))
