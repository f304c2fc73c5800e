"""The HTML report in a real headless browser (Debian's chromium): it loads with no console message, and every
chart renders (laid out with a size, marks drawn). Skipped when /usr/bin/chromium is absent.

Chromium is driven over the DevTools protocol with a minimal stdlib WebSocket client (no selenium, no driver).
`COSTSCOPE_UPDATE_SCREENSHOT=1` also rewrites docs/report.png, the README's screenshot of the sample report.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from reportkit import call, priced_steps

from costscope import api, htmlreport
from costscope.render.html import render_html

CHROMIUM = Path(os.environ.get("COSTSCOPE_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
HOSTILE = '<script>console.error("pwned")</script><img src=x onerror="console.error(1)">'

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")


class DevTools:
    """Just enough of a WebSocket client (RFC 6455: masked text frames out, unmasked frames in) for DevTools."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlparse(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(4096)
        head, _, self.buffer = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _send(self, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x81]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
            if n < 65536 else bytes([0x80 | 127]) + struct.pack(">Q", n)
        )  # fmt: skip
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _message(self) -> dict[str, Any]:
        data = b""
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            data += self._read(n)
            if first & 0x80:
                message: dict[str, Any] = json.loads(data)
                return message

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._send(json.dumps(message).encode())
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            assert time.monotonic() < deadline, f"no {method} within {timeout}s"
            self.events.append(self._message())


def devtools_url(log: Path, process: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The browser's DevTools WebSocket address, from the line chromium writes to stderr (here a file, so that a
    chatty browser can never block on a full pipe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"DevTools listening on (ws://\S+)", log.read_text(encoding="utf-8", errors="replace"))
        if match:
            return match.group(1)
        assert process.poll() is None, f"chromium exited: {log.read_text(encoding='utf-8', errors='replace')}"
        time.sleep(0.1)
    raise AssertionError(f"chromium did not start its DevTools server within {timeout}s")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    home = tmp_path_factory.mktemp("chromium")
    log = home / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={home / 'profile'}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        devtools = DevTools(devtools_url(log, process))
        yield devtools
        devtools.sock.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


COUNT_CHARTS = """
JSON.stringify([...document.querySelectorAll('svg[data-chart]')].map(s => {
  const box = s.getBoundingClientRect();
  const marks = [...s.querySelectorAll('.mark')].filter(m => {
    const b = m.getBBox();
    return b.width > 0 && b.height > 0;
  });
  return {chart: s.dataset.chart, width: box.width, height: box.height, marks: marks.length};
}))
"""


def load(browser: DevTools, path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Open `path` in a new tab; the charts as laid out, and every console message, log entry and exception."""
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session)
        browser.events.clear()
        browser.call("Page.navigate", session, url=path.as_uri())
        browser.wait_for("Page.loadEventFired")
        value = browser.call("Runtime.evaluate", session, expression=COUNT_CHARTS, returnByValue=True)
        charts: list[dict[str, Any]] = json.loads(value["result"]["value"])
        messages = [
            json.dumps(e["params"])
            for e in browser.events
            if e.get("sessionId") == session
            and e.get("method") in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")
        ]
        return charts, messages
    finally:
        browser.call("Target.closeTarget", targetId=target)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("", "boom"),  # a console error
        ('<meta http-equiv="Content-Security-Policy" content="script-src \'none\'">', "Content Security Policy"),
    ],
)
def test_a_page_with_errors_is_caught(browser: DevTools, tmp_path: Path, head: str, expected: str) -> None:
    """The check itself can fail: a console error, or a script the page's policy blocks, is seen."""
    page = tmp_path / "bad.html"
    page.write_text(
        f"<!DOCTYPE html><html><head>{head}</head><body><svg data-chart=x width=10 height=10>"
        "<rect class=mark width=5 height=5 /></svg><script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    charts, messages = load(browser, page)
    assert [c["marks"] for c in charts] == [1]
    assert any(expected in m for m in messages), messages


def test_sample_report_loads_cleanly_and_every_chart_renders(browser: DevTools, tmp_path: Path) -> None:
    samples = ROOT / "sample_traces"
    steps = api.load_priced_steps([str(samples)], api.AnalyzeOptions(prices=str(samples / "prices.yaml")))
    findings = [{"kind": "demo", "title": HOSTILE, "usd_at_stake": 0.5, "evidence": [HOSTILE], "policy_yaml": HOSTILE}]
    page = tmp_path / "report.html"
    page.write_text(render_html(htmlreport.build(steps, findings=findings)), encoding="utf-8")
    charts, messages = load(browser, page)
    assert messages == []
    names = [c["chart"] for c in charts]
    assert names == [
        "spend-over-time", "spend-by-model", "spend-by-agent", "token-composition", "input-segments",
        "cost-per-trace", "top-traces", "findings",
    ]  # fmt: skip
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 20 and chart["marks"] > 0, chart


def test_hostile_trace_text_stays_text(browser: DevTools, tmp_path: Path) -> None:
    calls = [call(HOSTILE, 1, "m-a", 1000, agent=HOSTILE), call("t2", 2, "m-b", 1000, n=1)]
    page = tmp_path / "hostile.html"
    policy = tmp_path / "identity.yaml"
    policy.write_text("version: 1\n", encoding="utf-8")
    data = htmlreport.build(priced_steps(tmp_path, calls), [str(policy)], title=HOSTILE)
    page.write_text(render_html(data), encoding="utf-8")
    charts, messages = load(browser, page)
    assert messages == []
    assert "savings-waterfall" in [c["chart"] for c in charts]
    assert all(c["marks"] > 0 for c in charts)


@pytest.mark.skipif(os.environ.get("COSTSCOPE_UPDATE_SCREENSHOT") != "1", reason="COSTSCOPE_UPDATE_SCREENSHOT=1")
def test_write_readme_screenshot(tmp_path: Path) -> None:
    samples = ROOT / "sample_traces"
    steps = api.load_priced_steps([str(samples)], api.AnalyzeOptions(prices=str(samples / "prices.yaml")))
    page = tmp_path / "report.html"
    policies = [str(samples / "policies" / "all.yaml")]
    page.write_text(render_html(htmlreport.build(steps, policies)), encoding="utf-8")
    target = ROOT / "docs" / "report.png"
    target.parent.mkdir(exist_ok=True)
    subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={target}",
         "--window-size=1280,5600", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert target.stat().st_size > 10_000
