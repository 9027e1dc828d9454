"""`/openapi.json` (the OpenAPI 3.1 document) and `/docs` (Swagger UI).

Swagger UI's files come from the `swagger-ui-py` package and are served by podrelay
itself: the docs page loads nothing from a CDN, so it works offline and behind a
strict firewall.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from flask import Blueprint, Response, current_app, jsonify, send_from_directory

from integration.api.openapi import document
from integration.errors import not_found

VERSION = "0.2.0"
ASSETS = Path(swagger_ui.__file__).parent / "static"
SERVED = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}

bp = Blueprint("docs", __name__)

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>podrelay API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", persistAuthorization: false});</script>
</body>
</html>
"""


@bp.get("/openapi.json")
def openapi_json():
    """`GET /openapi.json`, built once per process."""
    cached = current_app.extensions.get("podrelay_openapi")
    if cached is None:
        cached = current_app.extensions["podrelay_openapi"] = document(current_app, VERSION)
    return jsonify(cached)


@bp.get("/docs")
def docs_page():
    """`GET /docs`: Swagger UI."""
    return Response(_PAGE, mimetype="text/html")


@bp.get("/docs/assets/<name>")
def docs_asset(name: str):
    """Swagger UI's own files."""
    if name not in SERVED:
        raise not_found("Asset")
    response = send_from_directory(ASSETS, name, max_age=86400)
    return response
