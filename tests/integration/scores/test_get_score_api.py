"""POST /v1/get_score against the real PostgreSQL: answers, logged rows, precise 422s."""

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.main import create_app
from core.identity.app_users import create_app_user
from core.identity.game_keys import create_game
from core.platform.db import session_scope
from core.scores.formula import compute_score


@pytest.fixture(scope="module")
def game_key(db_engine: Engine) -> str:
    with session_scope() as session:
        return create_game(session, "Scores", game_id=f"scores-{uuid.uuid4().hex[:8]}").api_key


@pytest.fixture(scope="module")
def client(db_engine: Engine, game_key: str) -> TestClient:
    """A game server's client: every call carries its X-Api-Key."""
    with TestClient(create_app(), headers={"X-Api-Key": game_key}) as c:
        yield c


def test_get_score_needs_a_credential_and_logs_nothing_without(
    db_engine: Engine, client: TestClient
) -> None:
    anonymous = TestClient(create_app())
    with db_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM score_log")).scalar_one()
    missing = anonymous.post("/v1/get_score", json={"user_id": "p", "input": 1})
    wrong = anonymous.post(
        "/v1/get_score", json={"user_id": "p", "input": 1}, headers={"X-Api-Key": "sk_nope"}
    )
    with db_engine.connect() as conn:
        after = conn.execute(text("SELECT count(*) FROM score_log")).scalar_one()
    assert (missing.status_code, wrong.status_code) == (401, 403)
    assert missing.json()["code"] == "unauthorized"
    assert after == before


def test_an_app_user_scores_only_for_themself(db_engine: Engine) -> None:
    user_id = f"scorer-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        token = create_app_user(session, user_id).token
    app_client = TestClient(create_app(), headers={"Authorization": f"Bearer {token}"})
    own = app_client.post("/v1/get_score", json={"user_id": user_id, "input": 3})
    other = app_client.post("/v1/get_score", json={"user_id": "someone-else", "input": 3})
    assert own.status_code == 200 and own.json()["user_id"] == user_id
    assert other.status_code == 403 and "not the token's user" in other.json()["detail"]


def test_get_score_answers_and_logs_the_call(client: TestClient, db_engine: Engine) -> None:
    request_id = str(uuid.uuid4())
    response = client.post(
        "/v1/get_score",
        json={"user_id": "player-42", "input": 42.5},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == "player-42"
    assert body["input"] == 42.5
    assert body["score"] == compute_score(42.5) == 401.1343
    assert body["request_id"] == request_id
    assert response.headers["x-request-id"] == request_id
    with db_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT user_id, input_value, score, request_id, formula_version, created_at"
                " FROM score_log WHERE id = :id"
            ),
            {"id": body["log_id"]},
        ).one()
    assert row.user_id == "player-42"
    assert row.input_value == 42.5
    assert row.score == body["score"]
    assert str(row.request_id) == request_id
    assert row.formula_version == 1
    assert row.created_at.isoformat().startswith(body["computed_at"][:19])


def test_each_call_gets_its_own_row(client: TestClient, db_engine: Engine) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    ids = {
        client.post("/v1/get_score", json={"user_id": user, "input": i}).json()["log_id"]
        for i in range(3)
    }
    assert len(ids) == 3
    with db_engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM score_log WHERE user_id = :u"), {"u": user}
        ).scalar_one()
    assert count == 3


def test_a_request_id_that_is_not_a_uuid_is_refused_not_replaced(
    client: TestClient, db_engine: Engine
) -> None:
    """The id is what makes a retry answer the first call: one the platform replaced
    silently would log the retry as a second call."""
    with db_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM score_log")).scalar_one()
    response = client.post(
        "/v1/get_score", json={"user_id": "p", "input": 1}, headers={"X-Request-ID": "nope"}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "X-Request-ID must be a UUID, so that a retry answers the first call; got 'nope'"
    )
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM score_log")).scalar_one() == before
    # elsewhere it only correlates: a malformed one is replaced by the platform's own
    health = client.get("/health", headers={"X-Request-ID": "nope"})
    assert uuid.UUID(health.headers["X-Request-ID"])


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"input": 1}, "user_id", "Field required"),
        ({"user_id": "p"}, "input", "Field required"),
        ({"user_id": "p", "input": "abc"}, "input", "valid number"),
        ({"user_id": "p", "input": "1e3"}, "input", "valid number"),
        ({"user_id": "p", "input": True}, "input", "valid number"),
        ({"user_id": "p", "input": [1]}, "input", "valid number"),
        ({"user_id": "", "input": 1}, "user_id", "at least 1 character"),
        ({"user_id": "x" * 129, "input": 1}, "user_id", "at most 128"),
        ({"user_id": "bad id!", "input": 1}, "user_id", "pattern"),
        ({"user_id": "p", "input": 1e16}, "input", "less than or equal"),
        ({"user_id": "p", "input": 1, "extra": 2}, "extra", "Extra inputs"),
    ],
)
def test_validation_errors_name_the_field(
    client: TestClient, db_engine: Engine, payload: dict, field: str, fragment: str
) -> None:
    with db_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM score_log")).scalar_one()
    response = client.post("/v1/get_score", json=payload)
    assert response.status_code == 422
    body = response.json()
    fields = [d["field"] for d in body["errors"]]
    assert field in fields
    assert body["detail"].startswith(f"{field}: ")
    assert fragment in body["detail"]
    with db_engine.connect() as conn:
        after = conn.execute(text("SELECT count(*) FROM score_log")).scalar_one()
    assert after == before  # nothing logged for a rejected call


@pytest.mark.parametrize(
    "raw", ['{"user_id": "p", "input": NaN}', '{"user_id": "p", "input": Infinity}']
)
def test_non_finite_numbers_are_rejected(client: TestClient, raw: str) -> None:
    response = client.post(
        "/v1/get_score", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "input" in response.json()["detail"]


def test_malformed_json_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post(
        "/v1/get_score", content="{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_a_repeated_request_id_is_a_retry_or_a_409_never_a_500(client: TestClient) -> None:
    request_id = str(uuid.uuid4())
    headers = {"X-Request-ID": request_id}
    first = client.post("/v1/get_score", json={"user_id": "p-rid", "input": 4}, headers=headers)
    retry = client.post("/v1/get_score", json={"user_id": "p-rid", "input": 4}, headers=headers)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()  # the same call retried: the same answer, one row
    other = client.post("/v1/get_score", json={"user_id": "p-rid", "input": 5}, headers=headers)
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "conflict" and request_id in other.json()["detail"]


def test_a_number_of_five_thousand_digits_is_refused_with_the_reason(
    client: TestClient, db_engine: Engine
) -> None:
    with db_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM score_log")).scalar_one()
    body = '{"user_id": "p", "input": ' + "9" * 5000 + "}"
    response = client.post(
        "/v1/get_score", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "the body is not JSON this API reads: a number has more than 4,300 digits;"
        " send each number within its field's range"
    )
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM score_log")).scalar_one() == before
