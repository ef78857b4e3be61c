"""Issue 7: digest.html in a real headless Chromium — it loads with no console errors, its script
runs (search and filters work without a server), report markup stays text, and a screenshot is kept
under tests/artifacts/ for people to look at."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from lxml import html as lxml_html
from test_digest import INJECTION, make_inputs

from pipeline.run import RunConfig, run

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), shutil.which("google-chrome")) if p), None)
ARTIFACTS = Path(os.environ.get("HUIBIAN_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install-system-deps.sh)")


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    """Lines where the page wrote to its console or threw.

    Chromium logs page console messages as `INFO:CONSOLE:<line>] "..."` (older builds:
    `CONSOLE(<line>)`) without their level, so any console line counts: the digest logs nothing.
    """
    return [line for line in stderr.splitlines()
            if re.search(r":CONSOLE[:(]|CONSOLE\(\d+\)|Uncaught|Refused to (load|connect|execute)", line)]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("browser")
    out = base / "out"
    run(RunConfig(inputs=[str(make_inputs(base / "in"))], out=out, season="浏览器测试"))
    return out


def test_page_loads_without_console_errors_and_screenshot(page: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n", encoding="utf-8")  # artefacts never get committed
    shot = ARTIFACTS / "digest.png"
    shot.unlink(missing_ok=True)
    res = chromium((page / "digest.html").as_uri(), tmp_path / "profile", "--window-size=1280,1800",
                   f"--screenshot={shot}", "--hide-scrollbars")
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_errors(res.stderr) == []
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_script_runs_and_report_markup_stays_text(page: Path, tmp_path: Path) -> None:
    res = chromium((page / "digest.html").as_uri(), tmp_path / "profile", "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    assert console_errors(res.stderr) == []
    dom = lxml_html.fromstring(res.stdout)
    body = dom.find("body")
    assert body.get("data-ready") == "1"  # the inline script ran to its end
    s = pd.read_parquet(page / "sentences.parquet")
    assert int(body.get("data-sentences")) == int(s["kind"].isin(["body", "heading"]).sum())
    assert len(dom.xpath("//script")) == 2  # report text added no script element
    assert any(INJECTION in q.text_content() for q in dom.xpath("//blockquote"))


def test_search_works_without_a_server(page: Path, tmp_path: Path) -> None:
    word = "基层统计"
    res = chromium((page / "digest.html").as_uri() + "#q=" + quote(word), tmp_path / "profile",
                   "--dump-dom", "--virtual-time-budget=3000")
    assert console_errors(res.stderr) == []
    dom = lxml_html.fromstring(res.stdout)
    rows = dom.xpath("//table[@id='search-results']/tbody/tr")
    s = pd.read_parquet(page / "sentences.parquet")
    s = s[s["kind"].isin(["body", "heading"])]
    expected = s[s["text"].str.contains(word, regex=False)]
    assert len(expected) > 0
    assert len(rows) == len(expected)
    assert [r.xpath("./td")[3].text_content() for r in rows] == expected["text"].tolist()
