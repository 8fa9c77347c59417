"""The built documentation site renders in a real browser, with its figures.

Opens the landing page and a tutorial of a built site in headless Chromium (Debian's
``chromium``) through the DevTools protocol over a pipe (standard library only), and checks from
the rendered page: the title and the navigation sidebar are there, no element spills past the
window's width on the landing page, and every ``<img>`` of the tutorial was decoded by the
browser (``naturalWidth > 0``; a missing or broken file gives 0).

The site is built by CI before this test (``.ci/run``: ``sphinx -W -b html docs docs/_build/html``,
which executes every tutorial); ``RLREP_DOCS_HTML`` names the build folder. Without it the test
is skipped (building the site here would execute every tutorial a second time).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HTML = os.environ.get("RLREP_DOCS_HTML")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """Headless Chromium driven by DevTools commands over ``--remote-debugging-pipe`` (requests
    on fd 3, replies on fd 4, each message NUL-terminated JSON)."""

    def __init__(self) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds() -> None:  # the child's fd 3 reads our requests, its fd 4 writes the replies
            read, write = os.dup(to_chrome_r), os.dup(from_chrome_w)  # off 3 and 4 first
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--window-size=1280,900", "--allow-file-access-from-files", "about:blank"],
            preexec_fn=fds, close_fds=False,  # pass_fds would close 3 and 4 after the dup2
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer, self._id = b"", 0

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_chrome, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, url: str, expression: str):
        """Open ``url``, wait until it has loaded (images included), return ``expression``."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.navigate", session, url=url)
        wait = ("new Promise(r => document.readyState === 'complete' ? r(1) : "
                "addEventListener('load', () => r(1)))")  # fmt: skip
        self.call("Runtime.evaluate", session, expression=wait, awaitPromise=True)
        result = self.call("Runtime.evaluate", session, expression=expression,
                           returnByValue=True)  # fmt: skip
        return result["result"]["value"]

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module")
def site() -> Path:
    if not HTML:
        pytest.skip("set RLREP_DOCS_HTML to a built site (CI builds it, then runs this test)")
    if not CHROMIUM:
        pytest.fail("headless Chromium is needed: apt-get install chromium")
    root = Path(HTML).resolve()
    assert (root / "index.html").exists(), f"{root} holds no built site (index.html)"
    return root


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


PAGE = """({
  title: document.title,
  sidebar: document.querySelectorAll('.sidebar-tree a').length,
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  images: Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth]),
  headings: Array.from(document.querySelectorAll('h1')).map(h => h.textContent),
})"""


def test_landing_page_renders(site: Path, browser: Browser) -> None:
    page = browser.evaluate((site / "index.html").as_uri(), PAGE)
    assert page["title"].startswith("rlrep"), page["title"]
    assert any("rlrep" in h for h in page["headings"])
    assert page["sidebar"] >= 8, "the navigation sidebar lost its entries"
    assert page["overflow"] <= 0, f"the landing page is {page['overflow']} px wider than the window"


def test_tutorial_renders_with_its_figures(site: Path, browser: Browser) -> None:
    tutorial = site / "tutorials" / "sb3_aux_loss.html"
    assert tutorial.exists(), "the SB3 tutorial was not built"
    page = browser.evaluate(tutorial.as_uri(), PAGE)
    figures = [(src, width) for src, width in page["images"] if "_images/" in (src or "")]
    assert figures, "the tutorial shows no figure (its cells' plots are missing)"
    broken = [src for src, width in figures if width == 0]
    assert not broken, f"figures the browser could not load: {broken}"
