"""One child process for the protocol of docs/protocol.md: started in a process group of its own, its stdout read
as bounded lines, its stderr kept as a bounded tail, and ended with everything it started.

The limits below are the protocol's (docs/protocol.md, "Limits"): a child that passes one is ended, and the
request that was waiting fails with a one-line message naming the limit. The process group: on POSIX the child
starts a session of its own (`own_session`), so ending it (`close`, `kill`) ends its helpers and grandchildren
too, and so does the driver's exit (atexit, which SIGTERM and Ctrl-C reach through the command line's handlers).
A child started inside a worker process instead stays in the worker's own session, which the worker pool kills
as a whole on a timeout or at the end of the run.
"""
from __future__ import annotations

import atexit
import os
import queue
import shlex
import signal
import subprocess
import threading
import time

from xor_rosetta.errors import XorRosettaError

MAX_LINE_BYTES = 64 << 20  # one answer line (a train answer's checkpoints of a wide network are a few MB)
MAX_DEPTH = 32  # nesting of arrays and objects in an answer (a checkpoint answer nests 6 deep)
MAX_STRING_CHARS = 64 << 10  # any one string in an answer (a name, an error message, a number)
STDERR_TAIL_BYTES = 64 << 10  # of the child's stderr, only the last this many bytes are kept
GRACE_S = 2.0  # after its stdin closes, how long a child may take to exit before its group is killed

EOF, TOO_LONG = object(), object()  # markers from the reader thread: the stdout closed; a line passed the limit


class ProtocolError(XorRosettaError):
    """The child process broke the protocol, failed a request, timed out or exited."""


class Child:
    """A started child process: `send` a line, `receive` lines until a deadline; `close` ends it and its group."""

    def __init__(self, command: str, cwd: str | None = None, own_session: bool = True):
        self.command = command
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise XorRosettaError(f"--cmd {command!r}: {e}") from None
        if not argv:
            raise XorRosettaError("--cmd needs a command to run")
        self.own_session = own_session and os.name == "posix"
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, cwd=cwd, start_new_session=self.own_session)
        except OSError as e:
            raise XorRosettaError(f"cannot start {command!r}: {e.strerror or e}") from None
        self.ended = False
        self.lines: queue.Queue = queue.Queue(maxsize=2)  # a child that floods its stdout waits on its pipe
        self._tail = bytearray()
        self._tail_lock = threading.Lock()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        atexit.register(self.close)

    # --- reading
    def _read_stdout(self) -> None:
        """Split the stdout into lines as it comes, holding at most one line of MAX_LINE_BYTES (and one chunk)."""
        fd, buf, searched = self.proc.stdout.fileno(), bytearray(), 0
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                while True:
                    end = buf.find(b"\n", searched)
                    if end < 0:
                        searched = len(buf)
                        break
                    line = bytes(memoryview(buf)[:end + 1])
                    del buf[:end + 1]
                    searched = 0
                    if not self._put(line):
                        return
                if len(buf) > MAX_LINE_BYTES:
                    self._put(TOO_LONG)  # the rest of that line is never read: the child is ended
                    return
        except (OSError, ValueError):  # closed under us by close()
            pass
        self._put(EOF)

    def _put(self, item) -> bool:
        while not self.ended:
            try:
                self.lines.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _read_stderr(self) -> None:
        fd = self.proc.stderr.fileno()
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return
                with self._tail_lock:
                    self._tail += chunk
                    del self._tail[:-STDERR_TAIL_BYTES]
        except OSError:
            return

    def stderr_tail(self) -> str:
        """"; its stderr ends: LAST LINE" (200 characters at most), or "" when it wrote nothing."""
        with self._tail_lock:
            text = bytes(self._tail).decode("utf-8", "replace")
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        return f"; its stderr ends: {lines[-1].strip()[:200]}" if lines else ""

    def receive(self, deadline: float | None):
        """The next line (bytes), EOF, TOO_LONG, or None when `deadline` (time.monotonic) passes first."""
        try:
            if deadline is None:
                return self.lines.get()
            return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    # --- writing
    def send(self, line: bytes) -> bool:
        """Write one line to the child's stdin; False when it no longer reads it."""
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    # --- ending
    def exited(self) -> bool:
        """Whether the process has ended, without reaping it (its pid, the group's id, stays reserved)."""
        if self.proc.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except (ChildProcessError, AttributeError):
            return self.proc.poll() is not None

    def status(self) -> int | None:
        """The exit status once it has exited (negative: killed by that signal), else None; without reaping it."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except (ChildProcessError, AttributeError):
            return self.proc.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def close(self, grace: float = GRACE_S) -> None:
        """Close its stdin, give it `grace` seconds to exit, then kill its whole process group."""
        if self.ended and self.proc.returncode is not None:
            return
        self.ended = True
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        deadline = time.monotonic() + grace
        while not self.exited() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._kill_group()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        atexit.unregister(self.close)

    def kill(self) -> None:
        """End it and its group now (a timeout, a limit passed)."""
        self.close(grace=0.0)

    def _kill_group(self) -> None:
        if self.proc.returncode is not None:
            return  # reaped: the pid may be someone else's by now
        try:
            if self.own_session:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its grandchildren too, even after it exited itself
            elif not self.exited():
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
