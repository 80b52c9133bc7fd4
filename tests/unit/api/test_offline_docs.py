"""/docs works without internet: Swagger UI's files come from the project, not a CDN."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.main import create_app


def test_swagger_ui_loads_only_local_assets() -> None:
    client = TestClient(create_app())
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "cdn.jsdelivr" not in page.text


def test_swagger_offers_authorize_for_game_keys_and_app_tokens() -> None:
    schema = TestClient(create_app()).get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["GameKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": schemes["GameKey"]["description"],
    }
    assert schemes["AppUserToken"]["scheme"] == "bearer"
    batch = schema["paths"]["/v1/events/batch"]["post"]
    assert {"GameKey": []} in batch["security"]
