"""API edges: JSON 404 under /api/, refusals logged in one line, the API docs without internet."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client

from radio.models import Role

pytestmark = pytest.mark.django_db


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v2/stations", "/api/",
                                  "/api/v1/stations/kol/tracks/12/nothing"])
def test_unmatched_api_urls_answer_json_404(path, station, make_user):
    response = _signed_in(make_user(Role.VIEWER, station)).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}
    anonymous = Client().get(path)
    assert anonymous.status_code == 404 and anonymous.json() == {"detail": "Not found."}


def test_pages_keep_the_html_404(station, make_user):
    response = _signed_in(make_user(Role.VIEWER, station)).get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_refused_page_logs_one_line_without_traceback(station, make_user, caplog):
    viewer = make_user(Role.VIEWER, station)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = _signed_in(viewer).post(f"/stations/{station.slug}/notices",
                                           {"message": "x", "level": "info"})
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    record = records[0]
    assert record.exc_info is None and record.exc_text is None
    assert record.getMessage() == (f"Forbidden (Permission denied): /stations/{station.slug}/notices "
                                   "(Posting notices needs the editor role.)")
    assert "Traceback" not in caplog.text


def test_a_refused_api_call_logs_one_line(station, other_station, make_user, caplog):
    viewer = make_user(Role.VIEWER, station)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = _signed_in(viewer).post(f"/api/v1/stations/{station.slug}/notifications",
                                           {"message": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert "Traceback" not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)


def test_server_errors_keep_their_traceback():
    from radio.middleware import ClientErrorOneLine

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s",
                               ("/x",), exc_info)
    record.status_code = 500
    assert ClientErrorOneLine().filter(record) and record.exc_info is exc_info


@pytest.mark.parametrize("page", ["/api/docs", "/api/redoc"])
def test_api_docs_load_everything_from_this_server(page, station, make_user):
    client = _signed_in(make_user(Role.VIEWER, station))
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html
    assert not [u for u in urls if re.match(r"(https?:)?//", u)], urls
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    static = [u for u in urls if u.startswith("/static/")]
    assert any(u.endswith(".js") for u in static), urls
    for url in static:
        assert client.get(url).status_code == 200, url
    if page == "/api/docs":
        # Swagger UI's own script, rendered by drf-spectacular, names the local bundle too.
        script = client.get("/api/docs?script=").content.decode()
        assert "cdn.jsdelivr.net" not in script
