"""Settings: generated local secrets, derived URLs, production refuses missing secrets."""

import stat

import pytest
from pydantic import SecretStr

from core.platform.config import Settings


def test_local_secrets_are_generated_once_and_private(tmp_path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    first = settings.local_secret("stride_password")
    assert len(first) >= 32
    assert settings.local_secret("stride_password") == first
    assert Settings(state_dir=tmp_path / "state").local_secret("stride_password") == first
    mode = stat.S_IMODE((tmp_path / "state" / "secrets.json").stat().st_mode)
    assert mode == 0o600


def test_local_urls_use_the_generated_passwords(tmp_path) -> None:
    settings = Settings(state_dir=tmp_path, pg_port=6543)
    password = settings.local_secret("stride_password")
    assert settings.db_url == f"postgresql+psycopg://stride:{password}@127.0.0.1:6543/stride"
    assert settings.warehouse_db_url.endswith("@127.0.0.1:6543/warehouse")
    assert settings.readonly_db_url.startswith("postgresql+psycopg://stride_readonly:")


def test_explicit_urls_win(tmp_path) -> None:
    url = "postgresql+psycopg://app:pw@db.internal:5432/stride"
    settings = Settings(state_dir=tmp_path, database_url=SecretStr(url))
    assert settings.db_url == url
    assert not (tmp_path / "secrets.json").exists()


def test_production_requires_a_secret_key(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="STRIDE_SECRET_KEY"):
        _ = Settings(state_dir=tmp_path, env="prod").session_secret
    assert Settings(env="prod", secret_key=SecretStr("k" * 40)).session_secret == "k" * 40


def test_settings_read_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("STRIDE_KAFKA_BOOTSTRAP", "10.0.0.5:9093,10.0.0.6:9093")
    monkeypatch.setenv("STRIDE_API_PORT", "8123")
    settings = Settings(state_dir=tmp_path)
    assert settings.kafka_port == 9093
    assert settings.api_url == "http://127.0.0.1:8123"


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    import re

    from core.platform.config import REPO_ROOT

    text = (REPO_ROOT / ".env.example").read_text()
    documented = {m.lower() for m in re.findall(r"STRIDE_([A-Z0-9_]+)=", text)}
    known = set(Settings.model_fields)
    assert documented == known, (
        f"update .env.example: missing {known - documented}, unknown {documented - known}"
    )


def test_env_example_shows_the_real_defaults() -> None:
    import re

    from core.platform.config import REPO_ROOT

    text = (REPO_ROOT / ".env.example").read_text()
    shown = dict(re.findall(r"STRIDE_([A-Z0-9_]+)=(.*)", text))
    for name, field in Settings.model_fields.items():
        if field.default is None or name == "state_dir" or field.is_required():
            continue
        assert shown[name.upper()] == str(field.default), f"STRIDE_{name.upper()} default"
