"""How the supervisor finds PostgreSQL's server programs and runs the Kafka broker."""

from __future__ import annotations

import shutil
import stat
import tempfile
from pathlib import Path

import pytest

import cli.engines as engines
import cli.services as services
from cli.stack import SHARED_ROOT, StackError
from core.platform.config import Settings


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_postgres_binaries_come_from_pg_config_when_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "lib" / "postgresql" / "15" / "bin"
    initdb = _executable(bindir / "initdb")
    pg_config = _executable(tmp_path / "bin" / "pg_config")
    pg_config.write_text(f"#!/bin/sh\necho {bindir}\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # pg_config only, no initdb

    assert services.pg_binary("initdb") == str(initdb)
    assert services.pg_binary("no-such-program") is None


def test_a_missing_initdb_says_which_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "pg_binary", lambda _name: None)
    settings = Settings(state_dir=tmp_path)
    with pytest.raises(StackError, match="apt-get install postgresql-15"):
        services._initdb(settings, report=lambda _m: None)


def test_the_broker_config_is_a_loopback_kraft_node_with_data_in_the_state_folder(
    tmp_path: Path,
) -> None:
    settings = Settings(
        state_dir=tmp_path, kafka_bootstrap="127.0.0.1:19092", kafka_controller_port=19094
    )
    config = dict(
        line.split("=", 1) for line in services.kafka_server_properties(settings).splitlines()
    )
    assert config["process.roles"] == "broker,controller"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19094"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19094"
    assert config["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert config["num.partitions"] == str(settings.kafka_topic_partitions)


def test_jars_that_were_never_fetched_give_an_actionable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "ENGINES_DIR", tmp_path)
    with pytest.raises(StackError, match="stride engines fetch"):
        engines.classpath("kafka")


def test_a_changed_pom_makes_the_fetched_jars_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "ENGINES_DIR", tmp_path)
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / engines.STAMP).write_text("0" * 64 + "\n")
    assert not engines.is_fetched("kafka")
    (tmp_path / "kafka" / engines.STAMP).write_text(engines._pom_digest("kafka") + "\n")
    assert engines.is_fetched("kafka")


def test_a_cluster_whose_os_user_cannot_reach_the_state_folder_lives_in_var_lib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres OS user here")
    monkeypatch.setattr(services, "pg_os_user", lambda _s: "postgres")
    base = Path(tempfile.mkdtemp(prefix="stride-pg-reach-"))  # /tmp: traversable by all
    base.chmod(0o755)
    private = base / "private"
    (private / "checkout").mkdir(parents=True)
    private.chmod(0o700)  # like /root, or a `mktemp -d` folder
    shared = base / "shared"
    shared.mkdir()
    shared.chmod(0o755)

    hidden = services.pg_data_dir(Settings(state_dir=private / "checkout" / ".stride"))
    again = services.pg_data_dir(Settings(state_dir=private / "checkout" / ".stride"))
    visible = services.pg_data_dir(Settings(state_dir=shared / ".stride"))
    shutil.rmtree(base)

    assert hidden.parent.parent == SHARED_ROOT and hidden == again
    assert visible == shared / ".stride" / "postgres" / "data"


def test_kafka_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage tool reads ``-t -xyz`` as an option: such ids are drawn again."""
    import secrets

    draws = iter([b"\xfb" + bytes(15), bytes(16)])  # "-w..." first, then "AAAA..."
    monkeypatch.setattr(secrets, "token_bytes", lambda _n: next(draws))
    assert services._kafka_cluster_id() == "A" * 22
