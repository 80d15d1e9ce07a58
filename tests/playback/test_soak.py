"""Soak: the station exactly as `make run` starts it, operators at work, one kill -9, measured at the output.

run_station (supervisord and every Procfile process) runs on the test session's
PostgreSQL and Redis; the playback worker records what a listener hears; 30 short
songs go round under auto-DJ while operators skip, pause, play now, edit the
queue and change the volume through the API at random times; half-way through the
playback worker is killed with SIGKILL. The recording must show no silence over
0.5 s outside pauses and the restart (≤ 5 s), every natural track boundary within
20 ms, and the as-run log must agree with what was heard within 0.5 s.
"""

from __future__ import annotations

import json
import random
import time

import pytest
from django.conf import settings

from tests.playback.soak import SoakRun, configure_station, judge, make_library
from tests.servers import RedisServer, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(420)]

RUN_SECONDS = 170


def test_the_station_stays_on_air_through_operators_and_a_kill(process_env, tmp_path):
    configure_station(queue_depth=3, silence_alert=5)
    track_ids = make_library(tmp_path / "library", 30, seconds=lambda n: 3.0 + (n % 3))
    var = tmp_path / "var"
    env = {**process_env, "ONAIR_VAR_DIR": str(var), "PLAYBACK_RECORD_DIR": str(var / "heard"),
           "ONAIR_MEDIA_ROOT": str(settings.MEDIA_ROOT), "ONAIR_ADMIN_PASSWORD": "soak-admin-pw",
           "HOST": "127.0.0.1"}
    run = SoakRun(var_dir=tmp_path / "var", port=free_port(), env=env)
    env["PORT"] = str(run.port)
    # A Redis of its own: this station's Celery heartbeats must not make others' tests see a worker.
    redis_server = RedisServer()
    env["REDIS_URL"] = redis_server.start()
    rng = random.Random(20261130)
    try:
        run.start()
        started = time.monotonic()
        killed = False
        while time.monotonic() - started < RUN_SECONDS:
            time.sleep(rng.uniform(3.0, 7.0))
            if not killed and time.monotonic() - started > RUN_SECONDS / 2:
                run.kill_playback()
                killed = True
            else:
                run.random_operator_action(rng, track_ids)
        ended = time.monotonic()
    finally:
        exit_code = run.stop()
        redis_server.stop()
    verdict = judge(run, track_ids, started=started, ended=ended)
    (var / "events.json").write_text(json.dumps([e.__dict__ for e in run.events]))
    print("SOAK", json.dumps(verdict.figures))
    assert exit_code == 0, "".join(run.output[-50:])
    assert not verdict.problems, (verdict.problems, verdict.figures)
    assert verdict.figures["transitions"] >= 30
    assert verdict.figures["natural_transitions"] >= 15  # the others are an operator's doing
    assert verdict.figures["restarts"] == 1
    assert len(verdict.figures["killed_item_played_error_s"]) == 1  # logged with the time it really played
    assert verdict.figures["asrun_rows_checked"] >= 10
    assert verdict.figures["commands_answered"] >= 15
