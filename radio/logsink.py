"""Logging that never makes the caller wait on where the lines go.

A process whose main thread keeps time (the playback worker) must not block in `write()`
when its log sink stops reading: a full pipe (a supervisor or journal that stalls, a
terminal paused with Ctrl-S) holds the handler's lock, and every thread that logs next
waits on it — the on-air thread included, at the next track change. Measured: a worker
whose stderr pipe was not read stopped after ~64 KB of log, with music still queued.

`detach_log_output` puts a bounded queue between the loggers and the process's handlers:
records are handed over without waiting, one thread writes them out, and when the queue
is full a record is dropped and counted (said in the log once the sink reads again).
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import threading
import time

logger = logging.getLogger(__name__)


class DroppingQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler whose `emit` never waits: a full queue drops the record and counts it."""

    def __init__(self, records: queue.Queue) -> None:
        super().__init__(records)
        self.dropped = 0
        self._count_lock = threading.Lock()

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._count_lock:
                self.dropped += 1

    def take_dropped(self) -> int:
        with self._count_lock:
            dropped, self.dropped = self.dropped, 0
        return dropped


class _Listener(logging.handlers.QueueListener):
    """Writes queued records to the real handlers; reports what the queue had to drop."""

    def __init__(self, records: queue.Queue, front: DroppingQueueHandler, *handlers: logging.Handler) -> None:
        super().__init__(records, *handlers, respect_handler_level=True)
        self.front = front

    def close(self, timeout: float = 0.5) -> None:
        """Write out what is queued, waiting at most `timeout` s (a stalled sink keeps the rest)."""
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self.queue.put(self._sentinel, timeout=timeout)
        except queue.Full:
            return  # the writer is stuck on the sink: the daemon thread ends with the process
        thread.join(max(0.0, deadline - time.monotonic()))
        if not thread.is_alive():
            self._thread = None

    def handle(self, record: logging.LogRecord) -> None:
        dropped = self.front.take_dropped()
        if dropped:
            note = logging.LogRecord(logger.name, logging.WARNING, __file__, 0,
                                     "%d log lines dropped: the log output was not being read",
                                     (dropped,), None)
            super().handle(note)
        super().handle(record)


def detach_log_output(max_pending: int = 10_000) -> _Listener | None:
    """Route the root logger's handlers through a bounded queue and one writer thread.

    Returns the listener (call `.close()` to flush at exit), or None if there was nothing to do.
    Idempotent: a second call finds the queue handler in place and does nothing.
    """
    root = logging.getLogger()
    handlers = [h for h in root.handlers if not isinstance(h, logging.handlers.QueueHandler)]
    if not handlers or len(handlers) != len(root.handlers):
        return None
    records: queue.Queue = queue.Queue(maxsize=max_pending)
    front = DroppingQueueHandler(records)
    listener = _Listener(records, front, *handlers)
    for handler in handlers:
        root.removeHandler(handler)
    root.addHandler(front)
    listener.start()
    atexit.register(listener.close)
    return listener


class Throttled:
    """Log a fault that repeats (Redis away: every send fails) once per `every` s per message,
    with its traceback, and say how many like it were left out meanwhile. An outage is then a
    few lines, not a traceback every second that buries everything else (and fills the sink)."""

    def __init__(self, target: logging.Logger, every: float = 30.0) -> None:
        self.target, self.every = target, every
        self.last: dict[str, float] = {}
        self.left_out: dict[str, int] = {}
        self.lock = threading.Lock()

    def warning(self, msg: str, *args, exc_info: bool = True) -> bool:
        """Log now, or count it; True if logged. Call inside `except` for the traceback."""
        key, now = msg % args if args else msg, time.monotonic()
        with self.lock:
            last = self.last.get(key)
            if last is not None and now - last < self.every:
                self.left_out[key] = self.left_out.get(key, 0) + 1
                return False
            self.last[key] = now
            left_out = self.left_out.pop(key, 0)
        if left_out:
            msg = f"{msg} (and {left_out} times more in the last {now - last:.0f} s)"
        self.target.warning(msg, *args, exc_info=exc_info)
        return True
