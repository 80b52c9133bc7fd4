"""Supervisor logic that needs no process: dependency order, unknown names, cycles."""

import pytest

from cli.services import SERVICES
from cli.stack import Service, Stack, StackError
from core.platform.config import Settings


def svc(name: str, *deps: str) -> Service:
    return Service(
        name=name,
        description=name,
        command=lambda _s: ["true"],
        probe=lambda _s: None,
        url=lambda _s: "",
        port=lambda _s: 0,
        depends_on=deps,
    )


def test_dependencies_start_first(tmp_path) -> None:
    stack = Stack(
        Settings(state_dir=tmp_path), [svc("api", "db", "kafka"), svc("db"), svc("kafka")]
    )
    assert [s.name for s in stack.order(["api"])] == ["db", "kafka", "api"]
    assert [s.name for s in stack.order()] == ["db", "kafka", "api"]


def test_unknown_service_is_named(tmp_path) -> None:
    stack = Stack(Settings(state_dir=tmp_path), [svc("db")])
    with pytest.raises(StackError, match="unknown service nope; known: db"):
        stack.order(["nope"])


def test_cycle_is_reported(tmp_path) -> None:
    stack = Stack(Settings(state_dir=tmp_path), [svc("a", "b"), svc("b", "a")])
    with pytest.raises(StackError, match="cycle"):
        stack.order(["a"])


def test_declared_services_form_a_valid_graph(tmp_path) -> None:
    stack = Stack(Settings(state_dir=tmp_path), SERVICES)
    order = [s.name for s in stack.order()]
    assert order.index("postgres") < order.index("api")
    assert order.index("kafka") < order.index("api")
    assert len(order) == len(set(order))
