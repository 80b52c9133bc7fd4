"""The deployment files agree with the code: docker-compose.yml, Dockerfile, the runtime lock
and the workflows.

Docker cannot run here, so these tests read the files: every STRIDE_* variable they set is a
field of ``Settings`` with a value it accepts, ports are published on 127.0.0.1 only, secrets
are interpolated from the environment, the front door renders from the local stack's own
template, Prometheus scrapes the local stack's jobs with its rules, the image installs the
hash-checked runtime lock (the app's pins without test tools) as a non-root user from a base
pinned by digest, and the workflows reach AWS only through OIDC.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from core.platform.config import REPO_ROOT, Settings

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
CI_WORKFLOW = WORKFLOWS / "ci.yml"
RUNTIME_IN = REPO_ROOT / "requirements-runtime.in"
RUNTIME_LOCK = REPO_ROOT / "requirements-runtime.lock"

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
    from streams.heartbeat import ROLE_ENV

    per_service = compose_stride_env()
    assert per_service["api"] and per_service["migrate"], "api and migrate configure Stride"
    for service, env in per_service.items():
        unknown = sorted(set(env) - SETTINGS_VARS - {ROLE_ENV})
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
    # The API is reached only through its front door, as in the local stack.
    assert "proxy" in published and "api" not in published


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
    lock = next(i for i, r in enumerate(runs) if "-r requirements-runtime.lock" in r)
    assert "--require-hashes" in runs[lock]
    assert any("--no-deps ." in r for r in runs[lock + 1 :])
    assert not any("requirements.lock" in r for r in runs), "the image installs no test tools"

    final = stages[-1]
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert base and re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base[1])
    froms = [args for s in stages for k, args in s if k == "FROM"]
    # Every stage is the pinned Python base but the Rust toolchain's, which only the build
    # stage copies from (native/stride_native); nothing of it reaches the image.
    assert all(f.startswith("${PYTHON_IMAGE}") or f == "${RUST_IMAGE} AS rust" for f in froms)
    assert froms[-1].startswith("${PYTHON_IMAGE}")
    assert not any(k == "COPY" and "--from=rust" in args for k, args in final)
    rust = re.search(r"^ARG RUST_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert rust and re.fullmatch(r"rust:1\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", rust[1])
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


@pytest.mark.parametrize(
    "path", [COMPOSE, DOCKERFILE, *sorted(WORKFLOWS.glob("*.yml"))], ids=lambda p: p.name
)
def test_deploy_files_name_no_remote_hosts(path: Path) -> None:
    """Loopback and compose's own service names only (no registry or internet host)."""
    hosts = set(re.findall(r"https?://([^/:'\"\s]+)", path.read_text()))
    allowed = {"127.0.0.1", "localhost", *compose()["services"]}
    assert hosts <= allowed, f"{path.name} names hosts {sorted(hosts - allowed)}"


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


def test_compose_runs_every_process_of_the_platform() -> None:
    services = compose()["services"]
    commands = {name: services[name].get("command") for name in services}
    assert commands["worker"] == ["python", "-m", "streams", "run"]
    assert commands["indexer"] == ["python", "-m", "chain_indexer"]
    assert commands["exporter"] == ["python", "-m", "cli.exporter"]
    assert "python -m" in commands["chain-writer"][-1]
    assert services["chain-writer"]["profiles"] == ["chain-writer"]  # a slot until it exists
    # Every long-running Python process `stride up` starts, but for what stays local (the
    # Dagster dev server, the webhook receiver of the demo) and what compose runs its own
    # way (the API behind the proxy, the chain writer's slot), runs with the same module.
    from cli.services import SERVICES

    local = Settings(_env_file=None)
    python_services = {
        svc.name: svc.command(local)[1:]
        for svc in SERVICES
        if svc.command(local)[0] == sys.executable
    }
    compose_commands = [c[1:] for c in commands.values() if isinstance(c, list)]
    for name, argv in python_services.items():
        if name in {"api", "dagster", "webhooks", "writer"}:
            continue
        options = [i for i, a in enumerate(argv) if a.startswith("--")]
        expected = argv[: options[0]] if options else argv  # local file paths left out
        assert expected in compose_commands, f"compose runs no {name} ({expected})"
    for name in ("worker", "sampler", "matcher", "sweeper", "indexer", "chain-writer", "exporter"):
        # The image's HEALTHCHECK probes the API's port, which these processes do not open.
        assert services[name]["healthcheck"] == {"disable": True}, name
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_compose_front_door_renders_the_local_template_for_the_api_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs the proxy-config service's own script: the template's upstream is replaced by
    the api service (this fails if the template's upstream line changes)."""
    services = compose()["services"]
    script = services["proxy-config"]["command"][-1]
    env = {k: resolve(v) for k, v in service_env(services["proxy-config"]).items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from core.platform.config import get_settings

    get_settings.cache_clear()
    written: dict[str, str] = {}
    monkeypatch.setattr(Path, "write_text", lambda self, text: written.setdefault(str(self), text))
    try:
        exec(compile(script, "proxy-config", "exec"), {})
    finally:
        get_settings.cache_clear()
    conf = written["/etc/stride-proxy/nginx.conf"]
    assert "server api:8000;" in conf and "unix:" not in conf
    assert "listen 0.0.0.0:8080;" in conf
    assert services["proxy"]["ports"] == ["127.0.0.1:8000:8080"]
    assert "/etc/stride-proxy/nginx.conf" in services["proxy"]["command"][-1]


def test_compose_prometheus_scrapes_the_local_jobs_with_the_platform_rules() -> None:
    from cli.monitoring import scrape_targets

    document = compose()
    config = yaml.safe_load(document["configs"]["prometheus"]["content"])
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert set(jobs) <= set(scrape_targets(Settings(_env_file=None)))
    assert {"stride-api", "stride-streams", "stride-exporter"} <= set(jobs)
    services = document["services"]
    for job, [target] in jobs.items():
        host = target.split(":")[0]
        assert host == "127.0.0.1" or host in services, f"{job} scrapes unknown {host}"
    assert document["configs"]["prometheus-rules"]["file"] == "./deploy/prometheus/rules.yml"
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    assert "alertmanager:9093" in str(config["alerting"])
    # Metrics endpoints must bind beyond loopback inside the containers to be scraped.
    assert service_env(services["api"])["STRIDE_METRICS_HOST"] == "0.0.0.0"


def test_runtime_lock_is_the_app_dependencies_at_the_test_pins() -> None:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = [
        line.strip()
        for line in RUNTIME_IN.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-c"))
    ]
    assert sorted(declared) == sorted(project["dependencies"])

    def pins(path: Path) -> dict[str, str]:
        return dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", path.read_text(), re.M))

    runtime, full = pins(RUNTIME_LOCK), pins(REPO_ROOT / "requirements.lock")
    assert runtime and all(full.get(name) == version for name, version in runtime.items())
    tools = {"pytest", "ruff", "mypy", "moto", "playwright", "hypothesis", "aws-cdk-lib"}
    assert not tools & set(runtime), "test tools in the runtime lock"
    assert all("--hash=sha256:" in block for block in RUNTIME_LOCK.read_text().split("==")[1:])


def test_workflows_reach_aws_through_oidc_only() -> None:
    texts = {path.name: path.read_text() for path in WORKFLOWS.glob("*.yml")}
    assert not any(re.search(r"aws-(access-key-id|secret-access-key)", t) for t in texts.values())
    stage = yaml.safe_load(texts["deploy-stage.yml"])
    [job] = stage["jobs"].values()
    assert job["environment"] == "${{ inputs.stage }}"  # production's reviewers approve
    steps = {s.get("uses", "").split("@")[0]: s for s in job["steps"]}
    assert "role-to-assume" in steps["aws-actions/configure-aws-credentials"]["with"]
    assert stage["permissions"]["id-token"] == "write"
    deploy = yaml.safe_load(texts["deploy.yml"])
    on = deploy[True]  # YAML 1.1 reads the key `on` as true
    assert on["push"]["branches"] == ["main"] and on["push"]["tags"] == ["v*"]
    assert "pull_request" in on
    jobs = deploy["jobs"]
    assert jobs["staging"]["with"]["stage"] == "staging"
    assert jobs["production"]["with"]["stage"] == "production"
    assert "refs/tags/v" in jobs["production"]["if"]
    assert "cdk diff" in str(jobs["diff"]["steps"])
    run = " ".join(s.get("run", "") for s in job["steps"])
    assert run.index("run-migrations.sh") < run.index("cdk deploy"), "migrate before rolling"


def test_dagster_instance_of_the_image_is_valid() -> None:
    from dagster._core.instance.config import dagster_instance_config

    home = REPO_ROOT / "infra" / "dagster"
    config, _ = dagster_instance_config(str(home))
    assert config["run_launcher"]["module"] == "dagster_aws.ecs"
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
    assert "postgres" in config["storage"]
    assert "COPY --chown=root:root infra/dagster/dagster.yaml" in DOCKERFILE.read_text()
