"""Logging that never waits on its reader, and a repeating fault logged a few times, not each time."""

from __future__ import annotations

import logging
import queue
import threading

from radio.logsink import DroppingQueueHandler, Throttled, _Listener


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.gate = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.gate.wait(10)  # a sink that stops reading until the gate opens
        self.lines.append(record.getMessage())


def test_a_stalled_sink_drops_and_counts_instead_of_blocking_the_caller():
    records: queue.Queue = queue.Queue(maxsize=5)
    front = DroppingQueueHandler(records)
    sink = _Collect()
    listener = _Listener(records, front, sink)
    log = logging.getLogger("test.logsink.stalled")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(front)
    listener.start()
    try:
        for n in range(50):  # returns at once although nothing is written
            log.info("line %d", n)
        assert front.dropped >= 50 - 5 - 1
        sink.gate.set()
        while not records.empty():
            threading.Event().wait(0.01)
        log.info("after")
        listener.close(2.0)
    finally:
        log.removeHandler(front)
    assert "line 0" in sink.lines and "line 49" not in sink.lines
    assert any("log lines dropped" in line for line in sink.lines)
    assert sink.lines[-1] == "after"


def test_a_repeating_fault_is_logged_once_per_period_with_a_count(caplog):
    clock = [100.0]
    throttled = Throttled(logging.getLogger("test.logsink.throttled"), every=30.0)
    throttled_time = __import__("radio.logsink", fromlist=["time"]).time
    original = throttled_time.monotonic
    throttled_time.monotonic = lambda: clock[0]
    try:
        with caplog.at_level(logging.WARNING, logger="test.logsink.throttled"):
            for _ in range(10):
                try:
                    raise ConnectionError("Redis away")
                except ConnectionError:
                    throttled.warning("station=%s status not sent", "kol")
                clock[0] += 1.0
            throttled.warning("station=%s status not sent", "other", exc_info=False)  # another message
            clock[0] += 30.0
            throttled.warning("station=%s status not sent", "kol", exc_info=False)
    finally:
        throttled_time.monotonic = original
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["station=kol status not sent", "station=other status not sent",
                     "station=kol status not sent (and 9 times more in the last 40 s)"]
    assert caplog.records[0].exc_info is not None  # the first one carries the traceback
