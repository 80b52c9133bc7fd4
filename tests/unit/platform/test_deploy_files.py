"""The deployment files agree with the code: docker-compose.yml, Dockerfile and the CI workflow.

Docker cannot run here, so these tests read the files: every STRIDE_* variable they set is a
field of ``Settings`` with a value it accepts, ports are published on 127.0.0.1 only, secrets
are interpolated from the environment, and the image installs the hash-checked lock as a
non-root user.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core.platform.config import REPO_ROOT, Settings

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
CI_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"

PREFIX = Settings.model_config["env_prefix"]
SETTINGS_VARS = {PREFIX + name.upper() for name in Settings.model_fields}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?]))?([^}]*)\}")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def compose_stride_env() -> dict[str, dict[str, str]]:
    return {
        name: {k: v for k, v in service_env(svc).items() if k.startswith(PREFIX)}
        for name, svc in compose()["services"].items()
    }


def resolve(value: str) -> str:
    """Compose interpolation with an empty environment: defaults apply, required -> sample."""
    return INTERPOLATION.sub(
        lambda m: m.group(3) if m.group(2) == "-" else f"sample-{m.group(1).lower()}", value
    )


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions (keyword, arguments) per build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), args.strip()))
    return stages


def dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", args))
    return env


def test_every_stride_variable_in_compose_is_a_setting() -> None:
    per_service = compose_stride_env()
    assert per_service["api"] and per_service["migrate"], "api and migrate configure Stride"
    for service, env in per_service.items():
        unknown = sorted(set(env) - SETTINGS_VARS)
        assert not unknown, (
            f"{service} sets {unknown}, which core/platform/config.py Settings lacks"
        )


def test_compose_values_are_accepted_by_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: resolve(v) for k, v in compose_stride_env()["api"].items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.env == "prod"
    assert settings.kafka_bootstrap == env["STRIDE_KAFKA_BOOTSTRAP"]
    assert settings.db_url == env["STRIDE_DATABASE_URL"]
    assert settings.session_secret == env["STRIDE_SECRET_KEY"]
    assert settings.api_workers >= 1


def test_api_reaches_kafka_and_postgres_by_their_compose_names() -> None:
    services = compose()["services"]
    api = service_env(services["api"])
    advertised = service_env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert "controller" in service_env(services["kafka"])["KAFKA_PROCESS_ROLES"]  # KRaft
    assert f"//{api['STRIDE_KAFKA_BOOTSTRAP']}" in advertised
    for key in ("STRIDE_DATABASE_URL", "STRIDE_READONLY_DATABASE_URL", "STRIDE_WAREHOUSE_URL"):
        assert "@postgres:5432/" in api[key], f"{key} must point at the postgres service"


def test_api_waits_for_healthy_dependencies_and_migrations() -> None:
    services = compose()["services"]
    depends = services["api"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["stride", "db", "upgrade"]
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["kafka"]


def test_ports_are_published_on_loopback_only() -> None:
    published = []
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"
            published.append(name)
    assert "api" in published


def test_secrets_come_from_the_environment() -> None:
    for name, service in compose()["services"].items():
        for key, value in service_env(service).items():
            if re.search(r"PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), f"{name}.{key} is literal"
            for password in re.findall(r"://[^:/@]+:([^@]+)@", value):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", password), f"{name}.{key} password"


def test_dockerfile_installs_the_hashed_lock_as_a_non_root_user() -> None:
    stages = dockerfile_stages()
    runs = [args for stage in stages for keyword, args in stage if keyword == "RUN"]
    lock = next(i for i, r in enumerate(runs) if "-r requirements.lock" in r)
    assert "--require-hashes" in runs[lock]
    assert any("pip install --no-deps ." in r for r in runs[lock + 1 :])

    final = stages[-1]
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert any(k == "HEALTHCHECK" and "/health" in args for k, args in final)
    assert any(k == "CMD" and "uvicorn api.main:app" in args for k, args in final)
    unknown = sorted({k for k in dockerfile_env(final) if k.startswith(PREFIX)} - SETTINGS_VARS)
    assert not unknown, f"Dockerfile sets {unknown}, which Settings lacks"


def test_ci_runs_the_readme_test_command() -> None:
    workflow = yaml.safe_load(CI_WORKFLOW.read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert [s["run"].strip() for s in steps if "scripts/test.sh" in s.get("run", "")] == [
        "bash scripts/test.sh"
    ]


@pytest.mark.parametrize("path", [COMPOSE, DOCKERFILE, CI_WORKFLOW], ids=lambda p: p.name)
def test_deploy_files_name_no_remote_hosts(path: Path) -> None:
    hosts = set(re.findall(r"https?://([^/:'\"\s]+)", path.read_text()))
    assert hosts <= {"127.0.0.1", "localhost"}, f"{path.name} names hosts {sorted(hosts)}"


def test_compose_runs_the_kafka_version_of_the_local_stack() -> None:
    from cli.services import KAFKA_VERSION

    image = compose()["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{KAFKA_VERSION}"


def test_pyproject_declares_exactly_what_requirements_in_pins() -> None:
    """requirements.in is what the lock is compiled from; pyproject.toml must not drift."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    pinned = [
        line.strip()
        for line in (REPO_ROOT / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(declared) == sorted(pinned)
