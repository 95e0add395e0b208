"""The dashboard over https in Chromium (issue 16, item 7): the page, its API calls and its
live socket (wss://) all on the farm's TLS port, with a certificate made in the test run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from farmctl import ServerProcess
from tlscerts import Certs, tls_farm
from web_helpers import Dashboard

TOKEN = "tls-dash"


@pytest.fixture(scope="module")
def https_farm(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[ServerProcess]:
    with tls_farm(tmp_path_factory.mktemp("farm"), certs, TOKEN) as farm:
        yield farm


def test_the_dashboard_loads_and_goes_live_over_https(
    browser: Any, https_farm: ServerProcess
) -> None:
    # Chromium takes no CA file: the test CA is not in its store, so certificate errors are
    # ignored here; the CA and the pin are checked by the CLI's, the node's and the add-on's
    # tests.
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        urls: list[str] = []
        page.on("request", lambda request: urls.append(request.url))
        page.on("websocket", lambda socket: urls.append(socket.url))
        dash = Dashboard(page, https_farm.http_url, TOKEN)
        dash.open("#/jobs")
        assert page.evaluate("location.protocol") == "https:"
        assert any(url.startswith("wss://127.0.0.1:") for url in urls), urls
        assert all(url.startswith(("https://", "wss://")) for url in urls), urls
        assert dash.errors == [], dash.errors
    finally:
        context.close()
