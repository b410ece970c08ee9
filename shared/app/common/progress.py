"""A progress line on stderr for long runs: only on a TTY, only after a couple of seconds, never with --quiet."""
from __future__ import annotations

import sys
import threading
import time

SHOW_AFTER_S = 2.0


class Progress:
    def __init__(self, total: int, enabled: bool = True, stream=None):
        stream = sys.stderr if stream is None else stream  # the one in use now (tests and callers replace it)
        self.total, self.done, self.label, self.stream = total, 0, "", stream
        try:
            self.enabled = enabled and stream.isatty()
        except (ValueError, OSError, AttributeError):  # closed, or not a file
            self.enabled = False
        self.start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True) if self.enabled else None

    def __enter__(self):
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join()
            if time.perf_counter() - self.start >= SHOW_AFTER_S:
                self._write("\r\033[K")  # clear the line

    def update(self, label: str, done: int | None = None):
        self.label = label
        if done is not None:
            self.done = done

    def _loop(self):
        while not self._stop.wait(0.2):
            elapsed = time.perf_counter() - self.start
            if elapsed >= SHOW_AFTER_S:
                width = 24
                fill = int(width * self.done / max(self.total, 1))
                if not self._write(f"\r\033[K[{'#' * fill}{'-' * (width - fill)}] {self.done}/{self.total} "
                                   f"{self.label} {elapsed:.1f}s"):
                    return

    def _write(self, text: str) -> bool:
        """False when the terminal has gone (closed, hung up): the progress line stops, the run goes on."""
        try:
            self.stream.write(text)
            self.stream.flush()
            return True
        except (OSError, ValueError):
            self.enabled = False
            return False
