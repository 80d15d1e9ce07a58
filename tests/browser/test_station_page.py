"""The station page in headless Chromium against the real ASGI server (uvicorn)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from radio.models import Role
from tests.asgi_server import uvicorn_server

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("ONAIR_SCREENSHOTS", "/tmp/onair-screenshots"))


@pytest.fixture
def live_url(process_env):
    # The browser may still hold WebSockets open when the server is stopped: uvicorn_server
    # gives them --timeout-graceful-shutdown 2.
    with uvicorn_server(process_env) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM
    # calls are still plain synchronous code (the pattern pytest-playwright documents).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
        # ORM calls made while Playwright's loop ran used their own connection: close it.
        from django.db import connections

        connections.close_all()


def _sign_in(browser, url: str, username: str):
    page = browser.new_page()
    page.goto(f"{url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-Secret-123")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_notice_posted_by_an_editor_appears_live_for_a_viewer(browser, live_url, station,
                                                              make_user):
    from radio.models import Station

    Station.objects.exclude(pk=station.pk).delete()
    make_user(Role.EDITOR, station, username="editor")
    make_user(Role.VIEWER, station, username="viewer")

    viewer = _sign_in(browser, live_url, "viewer")
    assert viewer.url.endswith(f"/stations/{station.slug}/")
    viewer.wait_for_selector("#live-state.on", timeout=10_000)  # WebSocket is up
    assert viewer.locator("#notice-form").count() == 0

    editor = _sign_in(browser, live_url, "editor")
    editor.fill("#id_message", "Studio B is live at 10:00")
    editor.click("#notice-form button[type=submit]")
    editor.wait_for_load_state()

    # The viewer's page was not reloaded: the notice arrived over the socket.
    viewer.wait_for_selector("#notifications li:has-text('Studio B is live at 10:00')",
                             timeout=10_000)
    assert "editor" in viewer.inner_text("#notifications li:first-child")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(path=str(SCREENSHOTS / "station-en.png"), full_page=True)


def test_station_page_switches_to_hebrew_right_to_left(browser, live_url, station, make_user):
    from radio.models import Station

    Station.objects.exclude(pk=station.pk).delete()
    make_user(Role.EDITOR, station, username="editor")
    page = _sign_in(browser, live_url, "editor")
    page.select_option("#language-form select", "he")
    page.wait_for_load_state()
    page.wait_for_selector("html[dir=rtl]")
    assert page.get_attribute("html", "lang") == "he"
    assert "התראות" in page.inner_text("main")
    page.wait_for_selector("#live-state.on", timeout=10_000)
    assert page.inner_text("#live-state") == "עדכונים חיים פעילים"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "station-he.png"), full_page=True)
