"""What differs between staging and production, read from the CDK context (pure).

``cdk.json`` holds one ``stride:<stage>`` object per environment; ``-c stride:<stage>:<key>=v``
overrides one key (e.g. the account id on a real deploy). Nothing here looks anything up in
an AWS account: the availability zones are listed, the account may stay unresolved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

STAGES = ("staging", "production")

# The Faust worker roles of streams/__main__.py (streams/heartbeat.py's names): one ECS
# service per role, each its own consumer group, so each scales on its own lag.
WORKER_ROLES = ("scoring", "lake-sink", "metric-alerts", "battles")

_ACCOUNT = re.compile(r"^\d{12}$")
_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
_MODULE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*$")


class ConfigError(ValueError):
    """A context value the app cannot deploy with; the message names the key."""


@dataclass(frozen=True)
class StageConfig:
    """One environment's sizes, names and switches."""

    stage: str
    region: str
    availability_zones: tuple[str, ...]
    account: str | None = None
    vpc_cidr: str = "10.40.0.0/16"
    nat_gateways: int = 1
    api_domain: str = "api.staging.stride.example"
    github_repository: str = "stride-games/stride"
    image_tag: str = "latest"
    db_instance_class: str = "r6g.large"
    db_allocated_storage_gb: int = 100
    db_backup_retention_days: int = 7
    msk_broker_instance_type: str = "kafka.m7g.large"
    msk_broker_storage_gb: int = 500
    kafka_partitions: int = 12
    api_min_tasks: int = 2
    api_max_tasks: int = 6
    worker_max_tasks: int = 6
    worker_lag_target: int = 10_000
    waf_rate_limit_per_5min: int = 6_000
    chain_writer_module: str = "chain_writer"
    # 0 until the writer's module exists in the image: a service whose command cannot start
    # would make the ECS circuit breaker fail (and roll back) the whole compute deploy.
    chain_writer_tasks: int = 0
    lake_noncurrent_days: int = 30
    deletion_protection: bool = False
    # The first deploy creates every service at 0 tasks, so that the migrate task can run
    # before anything starts (docs/deploy.md, First deploy).
    paused: bool = False
    alarm_email: str | None = None
    github_oidc_provider_arn: str | None = None
    emr_release_label: str = "emr-7.9.0"
    spark_remote: str | None = None
    # s3:// URI of a packed Python 3.11 environment with the runtime dependencies for the
    # Spark jobs (docs/deploy.md); unset: the EMR release's own Python.
    spark_python_archive: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """``Staging`` / ``Production``: the stage's construct id."""
        return self.stage.capitalize()


def _coerce(stage: str, name: str, value: Any) -> Any:
    """A context value as the field's type (``-c`` passes every value as a string)."""
    default = StageConfig.__dataclass_fields__[name].default
    if name == "availability_zones":
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(item).strip() for item in items if str(item).strip())
    if name == "tags":
        if not isinstance(value, Mapping):
            raise ConfigError(f"stride:{stage}:tags must be an object of strings")
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(default, bool):
        return value.lower() in ("1", "true", "yes") if isinstance(value, str) else bool(value)
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"stride:{stage}:{name} must be an integer, got {value!r}") from None
    return None if value is None else str(value)


def stage_config(stage: str, context: Mapping[str, Any]) -> StageConfig:
    """The ``StageConfig`` of ``stage`` from the context object ``stride:<stage>``.

    Raises ``ConfigError`` for an unknown stage or a value that cannot be deployed."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
    raw = dict(context.get(f"stride:{stage}") or {})
    flat = f"stride:{stage}:"  # `-c stride:staging:image_tag=abc` overrides one key
    raw |= {key.removeprefix(flat): value for key, value in context.items() if key.startswith(flat)}
    known = {f.name for f in fields(StageConfig)} - {"stage"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"stride:{stage} has unknown keys {unknown}")
    if "region" not in raw or "availability_zones" not in raw:
        raise ConfigError(f"stride:{stage} needs region and availability_zones (3 of them)")
    values = {name: _coerce(stage, name, value) for name, value in raw.items()}
    config = StageConfig(stage=stage, **values)
    _validate(config)
    return config


def _validate(config: StageConfig) -> None:
    where = f"stride:{config.stage}"
    if len(config.availability_zones) != 3:
        raise ConfigError(f"{where}:availability_zones needs 3 zones (MSK: one broker per zone)")
    if not all(zone.startswith(config.region) for zone in config.availability_zones):
        raise ConfigError(f"{where}:availability_zones must be zones of {config.region}")
    if config.account is not None and not _ACCOUNT.match(config.account):
        raise ConfigError(f"{where}:account must be a 12-digit AWS account id")
    if not _REPO.match(config.github_repository):
        raise ConfigError(f"{where}:github_repository must be owner/name")
    if not _MODULE.match(config.chain_writer_module):
        raise ConfigError(f"{where}:chain_writer_module must be a Python module path")
    if config.api_min_tasks < 1 or config.api_max_tasks < config.api_min_tasks:
        raise ConfigError(f"{where}: need 1 <= api_min_tasks <= api_max_tasks")
    if config.chain_writer_tasks not in (0, 1):
        raise ConfigError(f"{where}:chain_writer_tasks is 0 or 1 (one signer, one nonce)")
    if config.kafka_partitions < 1 or config.worker_max_tasks < 1:
        raise ConfigError(f"{where}: kafka_partitions and worker_max_tasks must be >= 1")
