"""The relayer's /docs page is served from the package (no CDN), like `daimm web`'s."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from daimm.relayer.app import create_app

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


def test_docs__served_offline__names_no_external_host_and_its_assets_load(
    create_services: Any,
) -> None:
    http = TestClient(create_app(create_services()))

    page = http.get("/docs")
    assets = re.findall(r"""(?:src|href)="(/docs/assets/[^"]+)""", page.text)

    assert page.status_code == 200
    assert EXTERNAL.search(page.text) is None, page.text
    assert "cdn.jsdelivr.net" not in page.text
    assert len(assets) == 3  # script, style sheet, icon
    assert [http.get(a).status_code for a in assets] == [200, 200, 200]
    assert "SwaggerUIBundle" in http.get("/docs/assets/swagger-ui-bundle.js").text
    assert http.get("/redoc").status_code == 404  # ReDoc has no packaged assets
