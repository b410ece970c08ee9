"""Headless Chromium, driven over the DevTools protocol on a pipe: no Python dependency, no driver, no port.

`Browser` opens one page (a file, or a URL such as a local server's), records every network request the page makes
and every error it reports (console errors, uncaught exceptions, failed loads), evaluates JavaScript, clicks, types,
and takes a full-page screenshot. `xor-rosetta guide --screenshot`, tests/test_guide.py and tests/test_docs.py use
it with Debian's `chromium` package (`apt-get install chromium`); set XOR_ROSETTA_CHROMIUM to use another Chromium or
Chrome binary.
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from xor_rosetta.errors import XorRosettaError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe")  # the protocol on fds 3 (commands in) and 4 (replies and events out)


class BrowserError(XorRosettaError):
    """No usable Chromium, or it did not answer."""


def find_chromium() -> str | None:
    """The Chromium binary: $XOR_ROSETTA_CHROMIUM, else the first of CANDIDATES on PATH."""
    named = os.environ.get("XOR_ROSETTA_CHROMIUM")
    if named:
        return named if Path(named).is_file() else shutil.which(named)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


class Browser:
    """One headless Chromium with one page. Use as a context manager."""

    def __init__(self, width: int = 1600, height: int = 1000, timeout: float = 60.0, local: str | None = None):
        """`local`: the one host that resolves (e.g. "127.0.0.1", a test's own server); nothing else does."""
        self.exe = find_chromium()
        if self.exe is None:
            raise BrowserError("no Chromium found: install it (Debian: apt-get install chromium) or set "
                               "XOR_ROSETTA_CHROMIUM to a Chromium or Chrome binary")
        self.width, self.height, self.timeout, self.local = width, height, timeout, local
        self.requests: list[str] = []  # every URL the page asked for, in order
        self.errors: list[str] = []  # console errors, uncaught exceptions, failed loads and HTTP errors, in order
        self._id, self._buf, self._events = 0, b"", []

    def __enter__(self):
        self._profile = tempfile.TemporaryDirectory(prefix="xor-rosetta-chromium-")
        to_chrome, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome = os.pipe()
        rules = "MAP * ~NOTFOUND" + (f", EXCLUDE {self.local}" if self.local else "")
        args = [*FLAGS, f"--host-resolver-rules={rules}",  # nothing else resolves: a page that asks gets nothing
                f"--user-data-dir={self._profile.name}", f"--window-size={self.width},{self.height}"]
        # the pipes arrive as stdin and stdout; /bin/sh moves them to fds 3 and 4 for Chromium (no preexec_fn: this
        # process may have threads)
        shell = 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null'
        self.proc = None
        try:
            self.proc = subprocess.Popen(["/bin/sh", "-c", shell, self.exe, *args], stdin=to_chrome,
                                         stdout=from_chrome, stderr=subprocess.DEVNULL)
            os.close(to_chrome)
            os.close(from_chrome)
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Network", "Runtime", "Log"):
                self.send(f"{domain}.enable", session=True)
            self.send("Emulation.setDeviceMetricsOverride", session=True, width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            for fd in (to_chrome, from_chrome):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self.send("Browser.close", wait=False)
                    self.proc.wait(timeout=10)
                except (BrowserError, subprocess.TimeoutExpired):
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_chrome, self._from_chrome):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._profile.cleanup()

    # the protocol
    def send(self, method: str, session: bool = False, wait: bool = True, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        try:
            os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        except OSError as e:
            raise BrowserError(f"Chromium ({self.exe}) is not answering on its DevTools pipe ({e.strerror})") from None
        if not wait:
            return None
        want = self._id
        reply = self._read_until(lambda m: m.get("id") == want, f"a reply to {method}")
        if "error" in reply:
            raise BrowserError(f"Chromium refused {method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def _read_until(self, done, what: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if msg.get("method") == "Network.requestWillBeSent":
                    self.requests.append(msg["params"]["request"]["url"])
                self._record_error(msg)
                if "method" in msg:
                    self._events.append(msg)
                if done(msg):
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise BrowserError(f"Chromium ({self.exe}) did not send {what} within {self.timeout:g} s")
            ready, _, _ = select.select([self._from_chrome], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium ({self.exe}) closed the DevTools pipe while waiting for {what}")
                self._buf += chunk

    def _record_error(self, msg: dict) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console." + p["type"] + ": " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("uncaught: " + (d.get("exception", {}).get("description") or d.get("text", "")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            self.errors.append(f"{p['entry'].get('source')}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            self.errors.append(f"load failed: {p.get('errorText')} ({p.get('type')})")
        elif method == "Network.responseReceived" and p.get("response", {}).get("status", 200) >= 400:
            self.errors.append(f"HTTP {p['response']['status']}: {p['response'].get('url')}")

    # what a test or a script wants
    def open(self, path: str | Path) -> None:
        """Load a local file, or a URL (http://...), and wait for its load event."""
        self._events.clear()
        url = path if isinstance(path, str) and "://" in path else Path(path).resolve().as_uri()
        self.send("Page.navigate", session=True, url=url)
        if not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            self._read_until(lambda m: m.get("method") == "Page.loadEventFired", "the page's load event")

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        r = self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise BrowserError(f"JavaScript failed: {r['exceptionDetails'].get('text')} in {expression[:80]!r}")
        return r["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the centre of the first element matching `selector`."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                      f"e.scrollIntoView({{block: 'center'}}); "  # centred: clear of a sticky header
                      f"const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", session=True, type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def type(self, text: str) -> None:
        """Type text into the focused element, as a keyboard would (one input event per character)."""
        for ch in text:
            self.send("Input.dispatchKeyEvent", session=True, type="keyDown", text=ch, key=ch)
            self.send("Input.dispatchKeyEvent", session=True, type="keyUp", key=ch)

    def screenshot(self, out: str | Path) -> Path:
        """The whole page (not just the window) as a PNG."""
        size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": self.width, "height": int(size["height"]) + 1, "scale": 1}
        data = self.send("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True,
                         clip=clip)["data"]
        out = Path(out)
        from xor_rosetta.app.common.files import atomic_write_bytes
        atomic_write_bytes(out, base64.b64decode(data))
        return out
