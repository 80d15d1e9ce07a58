"""The station page's live feed when the server refuses the person (close 4401), in Chromium.

The page must not retry for ever: after a refusal it reloads once, so the server sends
the signed-out operator to the sign-in page.
"""

from __future__ import annotations

import time

import pytest

from radio.models import Role
from tests.browser.test_station_page import _sign_in, browser, live_url  # noqa: F401 - fixtures
from tests.servers import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_signed_out_page_stops_reconnecting_and_asks_to_sign_in(browser, live_url, station,  # noqa: F811
                                                                  make_user):
    from radio.models import Station

    Station.objects.exclude(pk=station.pk).delete()
    viewer = make_user(Role.VIEWER, station, username="viewer")
    port = int(live_url.rsplit(":", 1)[1])
    network = TcpProxy(port)  # between the browser and the server, to drop its socket
    try:
        url = f"http://127.0.0.1:{network.port}"
        page = _sign_in(browser, url, "viewer")
        sockets: list = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        assert page.url.endswith(f"/stations/{station.slug}/")
        page.wait_for_selector("#live-state.on", timeout=10_000)
        sockets.clear()  # count the attempts after the drop only

        viewer.set_password("changed-Elsewhere-1")  # signs the operator out of every session
        viewer.save()
        network.cut()  # the socket drops (1006): the page reconnects, now signed out
        network.restore()

        page.wait_for_url("**/login/**", timeout=15_000)
        attempts = len(sockets)
        time.sleep(4)  # past several back-off steps (1 s, 2 s): no retry loop
        assert len(sockets) == attempts == 1, "one reconnection, refused with 4401, then none"
    finally:
        network.close()
