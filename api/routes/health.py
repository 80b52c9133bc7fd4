"""Liveness (``/health``) and readiness (``/ready``) endpoints."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from core.platform.kafka_security import tls_context_for_probe
from core.platform.probes import kafka_problem, postgres_problem

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: PostgreSQL and Kafka are reachable",
    responses={503: {"model": Readiness, "description": "A dependency is down; it is named"}},
)
async def ready(settings: SettingsDep) -> JSONResponse:
    problems = {
        "postgresql": await run_in_threadpool(postgres_problem, settings.db_url),
        "kafka": await run_in_threadpool(
            kafka_problem, settings.kafka_bootstrap, 1.0, tls_context_for_probe(settings)
        ),
    }
    checks = {name: problem or "ok" for name, problem in problems.items()}
    down = [name for name, problem in problems.items() if problem]
    body = Readiness(status="down: " + ", ".join(down) if down else "ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=503 if down else 200)
