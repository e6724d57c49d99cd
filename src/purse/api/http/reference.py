"""The API reference page: Swagger UI rendering the OpenAPI document, with no CDN.

Swagger UI's files come from the `swagger-ui-bundle-v2` package (the Swagger UI release
its version names, 5.x, which renders OpenAPI 3.1). `reference_page` is the HTML page,
which loads the document from `document_path` and Swagger UI's files from
`assets_prefix`; `asset` answers those files by name. Only the files the page uses are
served, each by its exact name, so no other file can be reached through a name. The
page references nothing outside the server: no fonts, scripts or validator elsewhere.
"""

from __future__ import annotations

import functools
import html
import json
from typing import Final

from swagger_ui_bundle import swagger_ui_path

from purse.api.http import openapi

# The files the page loads, with their content types.
ASSETS: Final[dict[str, str]] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

_PAGE: Final = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Purse API reference</title>
<link rel="stylesheet" href="{prefix}swagger-ui.css">
<link rel="icon" type="image/png" href="{prefix}favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{prefix}favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="reference"></div>
<script src="{prefix}swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {document},
  dom_id: "#reference",
  deepLinking: true,
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  validatorUrl: null,
  tryItOutEnabled: false,
  persistAuthorization: false,
}});
</script>
</body>
</html>
"""


def _script_string(text: str) -> str:
    """`text` as a JavaScript string literal that cannot end the script element."""
    return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def reference_page(document_path: str = "/openapi.json", assets_prefix: str = "/docs/") -> bytes:
    """The HTML page, loading the document from `document_path` and the files from
    `assets_prefix` (which ends with "/")."""
    page = _PAGE.format(
        prefix=html.escape(assets_prefix, quote=True), document=_script_string(document_path)
    )
    return page.encode()


def asset(name: str) -> tuple[bytes, str] | None:
    """One of the page's files by its name, with its content type; None for any other name."""
    content_type = ASSETS.get(name)
    if content_type is None:
        return None
    return _read(name), content_type


@functools.cache  # only ever called with the names of ASSETS, so it holds four files at most
def _read(name: str) -> bytes:
    content: bytes = swagger_ui_path.joinpath(name).read_bytes()
    return content


def published(path: str) -> tuple[bytes, str] | None:
    """What the HTTP port serves at `path` besides the RPCs and /metrics: the OpenAPI
    document (`/openapi.json`), this page (`/docs`) and its files (`/docs/<name>`)."""
    if path == "/openapi.json":
        return openapi.document_json(), "application/json"
    if path in ("/docs", "/docs/"):
        return reference_page(), "text/html; charset=utf-8"
    if path.startswith("/docs/"):
        return asset(path.removeprefix("/docs/"))
    return None
