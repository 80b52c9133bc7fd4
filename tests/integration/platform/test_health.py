"""/health and /ready against the real PostgreSQL and Apache Kafka."""

from fastapi.testclient import TestClient

from api.main import create_app
from cli.stack import free_port
from core.platform.config import Settings, get_settings


def test_health_is_always_ok() -> None:
    with TestClient(create_app()) as client:
        assert client.get("/health").json() == {"status": "ok"}


def test_ready_when_postgres_and_kafka_answer(db_engine, kafka: Settings) -> None:
    with TestClient(create_app()) as client:
        response = client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"postgresql": "ok", "kafka": "ok"}}


def test_ready_is_503_and_names_what_is_down(db_engine, kafka: Settings) -> None:
    broken = kafka.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: broken
    with TestClient(app) as client:
        response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down: kafka"
    assert body["checks"]["postgresql"] == "ok"
    assert body["checks"]["kafka"].startswith("Kafka unreachable")
