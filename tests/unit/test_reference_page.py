"""The reference page loads everything from this server, and only its own files are served."""

from __future__ import annotations

import re

import pytest

from purse.api.http.reference import ASSETS, asset, reference_page


def test_the_page_references_no_web_address_outside_the_server() -> None:
    page = reference_page().decode()

    assert re.findall(r"https?://", page, flags=re.IGNORECASE) == []
    assert '"/openapi.json"' in page


def test_every_file_the_page_loads_is_served_with_its_content_type() -> None:
    page = reference_page(document_path="/api/openapi.json", assets_prefix="/api/docs/").decode()

    loaded = re.findall(r'(?:src|href)="/api/docs/([^"]+)"', page)
    assert sorted(loaded) == sorted(ASSETS)
    for name in loaded:
        served = asset(name)
        assert served is not None
        content, content_type = served
        assert content
        assert content_type == ASSETS[name]
    assert '"/api/openapi.json"' in page


@pytest.mark.parametrize(
    "name", ["../x", "../openapi.py", "/etc/passwd", "swagger-ui.js", "index.j2", "", "."]
)
def test_a_name_that_is_not_one_of_the_pages_files_is_refused(name: str) -> None:
    assert asset(name) is None


def test_a_document_path_cannot_end_the_pages_script() -> None:
    page = reference_page(document_path="/x</script><script>alert(1)//").decode()

    assert "</script><script>" not in page
