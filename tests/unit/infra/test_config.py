"""infra/config.py: the stages' settings from the CDK context, and the refusals."""

from __future__ import annotations

import json

import pytest

from infra.app import INFRA_DIR, stages_to_build
from infra.config import STAGES, WORKER_ROLES, ConfigError, stage_config

CONTEXT = json.loads((INFRA_DIR / "cdk.json").read_text())["context"]


def test_cdk_json_configures_every_stage() -> None:
    for stage in STAGES:
        config = stage_config(stage, CONTEXT)
        assert config.stage == stage
        assert len(config.availability_zones) == 3
        assert config.account is None  # synth stays account-agnostic until a real deploy
    assert stage_config("production", CONTEXT).deletion_protection
    assert not stage_config("staging", CONTEXT).deletion_protection


def test_command_line_strings_are_coerced() -> None:
    context = {
        "stride:staging": {
            **CONTEXT["stride:staging"],
            "api_max_tasks": "9",
            "deletion_protection": "true",
            "availability_zones": "eu-west-1a, eu-west-1b,eu-west-1c",
            "account": "123456789012",
        }
    }
    config = stage_config("staging", context)
    assert config.api_max_tasks == 9
    assert config.deletion_protection is True
    assert config.availability_zones == ("eu-west-1a", "eu-west-1b", "eu-west-1c")
    assert config.account == "123456789012"


def test_one_key_is_overridden_from_the_command_line() -> None:
    context = {**CONTEXT, "stride:production:image_tag": "0123abc", "stride:staging:x": 1}
    assert stage_config("production", context).image_tag == "0123abc"
    assert stage_config("production", CONTEXT).image_tag == "latest"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"account": "12345"}, "12-digit"),
        ({"availability_zones": ["eu-west-1a", "eu-west-1b"]}, "3 zones"),
        ({"availability_zones": ["us-east-1a", "us-east-1b", "us-east-1c"]}, "zones of eu-west-1"),
        ({"github_repository": "no-slash"}, "owner/name"),
        ({"chain_writer_module": "rm -rf /"}, "Python module"),
        ({"api_min_tasks": 5, "api_max_tasks": 2}, "api_min_tasks"),
        ({"api_max_tasks": "many"}, "integer"),
        ({"chain_writer_tasks": 2}, "one signer"),
        ({"surprise": 1}, "unknown keys"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(change: dict, message: str) -> None:
    context = {"stride:staging": {**CONTEXT["stride:staging"], **change}}
    with pytest.raises(ConfigError, match=message):
        stage_config("staging", context)


def test_unknown_stage_and_missing_region_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown stage"):
        stage_config("dev", CONTEXT)
    with pytest.raises(ConfigError, match="needs region"):
        stage_config("staging", {"stride:staging": {"api_domain": "x.example"}})


def test_stage_selection_from_context() -> None:
    assert stages_to_build({}) == list(STAGES)
    assert stages_to_build({"stage": "production"}) == ["production"]


def test_worker_roles_are_the_streams_roles() -> None:
    from streams.__main__ import _AGENTS
    from streams.heartbeat import ROLES

    assert set(WORKER_ROLES) == set(ROLES) == set(_AGENTS)


def test_consumer_groups_are_the_faust_app_ids() -> None:
    from core.platform.config import Settings
    from infra.stacks.compute import CONSUMER_GROUPS
    from streams.heartbeat import app_id_of

    settings = Settings(_env_file=None)
    assert {role: app_id_of(settings, role) for role in WORKER_ROLES} == CONSUMER_GROUPS
