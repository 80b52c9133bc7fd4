"""The warehouse adapter's pure parts: Redshift SQL, pseudonyms, rows in table order."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from core.warehouse.load import (
    GAME_DAILY,
    USER_DAILY_HEALTH,
    postgres_ddl,
    pseudonym,
    redshift_ddl,
    redshift_load_statements,
    warehouse_rows,
)

ROLE = "arn:aws:iam::123456789012:role/stride-redshift-copy"


def test_redshift_ddl_has_dist_and_sort_keys() -> None:
    ddl = redshift_ddl(USER_DAILY_HEALTH)
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS user_daily_health (\n  date DATE NOT NULL,")
    assert "user_key CHAR(64) NOT NULL" in ddl
    assert "PRIMARY KEY (date, user_key)" in ddl
    assert ddl.endswith("DISTSTYLE KEY\nDISTKEY (user_key)\nCOMPOUND SORTKEY (date)")
    assert "DISTKEY (game_id)\nCOMPOUND SORTKEY (date, game_id)" in redshift_ddl(GAME_DAILY)
    assert "DISTKEY" not in postgres_ddl(USER_DAILY_HEALTH)


def test_redshift_load_replaces_one_day_from_the_stage() -> None:
    prefix = "s3://stride-lake/stage/warehouse/game_daily/date=2026-11-21/"
    statements = redshift_load_statements(GAME_DAILY, date(2026, 11, 21), prefix, ROLE)
    assert statements == [
        ("DELETE FROM game_daily WHERE date = %s", (date(2026, 11, 21),)),
        (
            "COPY game_daily FROM 's3://stride-lake/stage/warehouse/game_daily/date=2026-11-21/' "
            "IAM_ROLE 'arn:aws:iam::123456789012:role/stride-redshift-copy' FORMAT AS PARQUET",
            (),
        ),
    ]


@pytest.mark.parametrize(
    ("prefix", "role", "message"),
    [
        ("/tmp/lake/stage/", ROLE, "is not s3://"),
        ("s3://b/p/", "stride-role", "must be an ARN"),
    ],
)
def test_redshift_load_rejects_bad_locations(prefix: str, role: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        redshift_load_statements(GAME_DAILY, date(2026, 11, 21), prefix, role)


def test_quotes_in_the_prefix_cannot_break_out_of_the_literal() -> None:
    (_, (copy, _params)) = redshift_load_statements(
        GAME_DAILY, date(2026, 11, 21), "s3://b/it's/", ROLE
    )
    assert "FROM 's3://b/it''s/'" in copy


def test_pseudonym_is_a_keyed_hash() -> None:
    expected = hmac.new(b"k1", b"user-42", hashlib.sha256).hexdigest()
    assert pseudonym("user-42", "k1") == expected
    assert pseudonym("user-42", "k2") != expected
    assert len(expected) == 64


def test_warehouse_rows_drop_the_user_id_and_follow_table_order() -> None:
    gold = pa.table(
        {
            "user_id": ["user-42"],
            "steps": pa.array([1200], pa.int64()),
            "resting_heart_rate": [54.0],
            "sleep_minutes": [None],
            "sample_count": pa.array([9], pa.int64()),
            "date": pa.array([date(2024, 11, 2)], pa.date32()),
        }
    )
    loaded_at = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    rows = warehouse_rows(USER_DAILY_HEALTH, gold, "k1", loaded_at)
    assert rows.column_names == USER_DAILY_HEALTH.column_names
    assert "user_id" not in rows.column_names
    (row,) = rows.to_pylist()
    assert row["user_key"] == pseudonym("user-42", "k1")
    assert (row["date"], row["steps"], row["sleep_minutes"]) == (date(2024, 11, 2), 1200, None)


def test_game_rows_keep_token_precision() -> None:
    gold = pa.table(
        {
            "game_id": ["tri"],
            "events": [3],
            "sessions": [1],
            "matches": [1],
            "active_players": [2],
            "tokens_minted": pa.array([Decimal("10.000000000000000001")], pa.decimal128(38, 18)),
            "tokens_burned": pa.array([Decimal("2.5")], pa.decimal128(38, 18)),
            "date": pa.array([date(2024, 11, 2)], pa.date32()),
        }
    )
    rows = warehouse_rows(GAME_DAILY, gold, "k1", datetime.now(UTC))
    assert rows.to_pylist()[0]["tokens_minted"] == Decimal("10.000000000000000001")
