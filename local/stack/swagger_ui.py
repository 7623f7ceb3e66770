"""Swagger UI for the local stack's API, offline: its page and assets come from the npm package swagger-ui-dist that
`make install` puts in .tools/ (next to DynamoDB Local), and it reads the merged OpenAPI document the front door
serves. The document's `jwt` scheme gives the page an Authorize button: paste a token from `python -m local token`."""

import html
import json
import mimetypes
import re
from pathlib import Path

from werkzeug.wrappers import Response

from local.stack.aws_engines import NODE_MODULES

SWAGGER_UI_DIST = NODE_MODULES / "swagger-ui-dist"
DOCUMENT_PATH = "/_local/openapi.json"
PAGE_PATH = "/_local/swagger"
ASSETS_PATH = "/_local/swagger/assets"
ASSET_PATTERN = re.escape(ASSETS_PATH) + r"/(?P<name>[\w.-]+)"
# What the page loads: the bundle (Swagger UI and its presets), its stylesheet and the favicons.
PAGE_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png")
_CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def swagger_page(title: str, assets_dir: Path = SWAGGER_UI_DIST) -> Response:
    """The Swagger UI page for DOCUMENT_PATH; a 503 that says how to install it when the assets are missing."""
    if not (assets_dir / "swagger-ui-bundle.js").is_file():
        return Response(
            f"Swagger UI's assets are not installed ({assets_dir}): run `make install`.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    config = {
        "url": DOCUMENT_PATH,
        "dom_id": "#swagger-ui",
        "deepLinking": True,
        "persistAuthorization": True,
        "tryItOutEnabled": True,
    }
    page = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{html.escape(title)}</title>
  <link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle(Object.assign({json.dumps(config)}, {{
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }}));
  </script>
</body>
</html>
"""
    return Response(page, content_type="text/html; charset=utf-8")


def swagger_asset(name: str, assets_dir: Path = SWAGGER_UI_DIST) -> Response:
    """One file the page loads (only those: nothing else of the package, nothing outside it)."""
    if name not in PAGE_ASSETS or not (assets_dir / name).is_file():
        return Response(json.dumps({"message": "Not Found"}), status=404, content_type="application/json")
    path = assets_dir / name
    content_type = _CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = Response(path.read_bytes(), content_type=content_type)
    response.headers["Cache-Control"] = "max-age=3600"
    return response
