"""The HTML report (gensynth/analysis/document.py) opened in a real headless browser.

`gensynth report` writes index.html beside report.md: one self-contained file (figures as
data URIs, no scripts, no network resources), a contents list, and every table beside the
SQL file that produced it. Chromium (Debian's `chromium` package) renders it to a PNG and
loads a copy with a probe script that checks every image decoded and collects every error;
a deliberately broken page shows that the probe catches what it should. Skipped, with the
reason, where no Chromium is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_analysis import build_fixture_warehouse

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio")
# Put first into a copy of the page's body: after load, say how many images decoded and list every error.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push('error: ' + (e.message || (e.target && (e.target.src || '').slice(-60)))), true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const probe = document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = 'images ' + ok + '/' + imgs.length + ' errors [' + window.__errors.join(' | ') + ']';
  document.body.appendChild(probe);
});
</script>"""


def browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


needs_browser = pytest.mark.skipif(browser() is None, reason="no headless Chromium installed (apt-get install -y chromium)")


def run_browser(page: Path, tmp: Path, *mode: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([browser(), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           "--virtual-time-budget=5000", *mode, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180)


def console_errors(stderr: str) -> list[str]:
    """What the page itself complained about (Chromium's own D-Bus/GPU chatter is not the page's)."""
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line or "net::ERR" in line or "Failed to load resource" in line or "Uncaught" in line]


def probe(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """(the probe's line from the loaded page, console errors) for a copy of ``page`` with PROBE appended."""
    probed = page.with_name(page.stem + ".probe.html")
    probed.write_text(page.read_text().replace("<body>", "<body>" + PROBE, 1))  # first: it sees every error
    out = run_browser(probed, tmp, "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', out.stdout)
    assert found, out.stdout[-2000:]
    return found.group(1), console_errors(out.stderr)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    from gensynth.cli.main import app

    tmp = tmp_path_factory.mktemp("html")
    wh = build_fixture_warehouse(tmp / "gensynth.duckdb")
    out = tmp / "rep"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "-w", str(wh), "--split", "support_syntactic"])
    assert result.exit_code == 0, result.output
    return out


def test_index_html_is_self_contained_with_contents_and_the_sql_beside_each_table(report_dir):
    from gensynth.analysis.figures import FIGURES

    page = (report_dir / "index.html").read_text()
    # Nothing outside the file: no external src/href, no script, no stylesheet link.
    assert not re.findall(r'(?:src|href)="(?!data:|#)', page)
    assert "<script" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    # A contents list whose every entry points at a heading of the page.
    nav = re.search(r"<nav>(.*?)</nav>", page, re.S).group(1)
    anchors = re.findall(r'href="#([^"]+)"', nav)
    assert len(anchors) >= 10 and all(f'id="{a}"' in page for a in anchors)
    # Every table of the Markdown report is there, each beside its SQL file.
    md_files = set(re.findall(r"\[`(sql/report/\w+\.sql)`\]\([^)]*sql/report/\w+\.sql\) \(rerun", (report_dir / "report.md").read_text()))
    pairs = re.findall(r'<div class="pair">.*?<h4>(sql/report/\w+\.sql) ', page, re.S)
    assert md_files and md_files == set(pairs), (md_files, pairs)
    assert "SET VARIABLE method = &#x27;transformer&#x27;;" in page  # the density table's parameters, ready for the shell
    assert "| support_syntactic | test_ood |" not in page  # tables are HTML, not Markdown
    assert "<td>support_syntactic</td><td>test_ood</td><td>transformer</td>" in page


@needs_browser
def test_chromium_renders_the_report_without_errors(report_dir, tmp_path):
    from matplotlib import image

    from gensynth.analysis.figures import FIGURES

    page = report_dir / "index.html"
    line, errors = probe(page, tmp_path)
    assert line == f"images {len(FIGURES)}/{len(FIGURES)} errors []", line
    assert errors == [], errors
    shot = tmp_path / "report.png"
    out = run_browser(page, tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars")
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    assert console_errors(out.stderr) == []
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (2400, 1400)
    assert pixels[..., :3].std() > 0.05  # text, tables and figures, not a blank page
    shutil.copy(shot, report_dir / "rendered.png")  # kept for a person to look at


@needs_browser
def test_the_probe_catches_a_broken_page(tmp_path):
    """The checks above can fail: a missing image and a script error are both reported."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><img src='missing.png'><img src='data:image/png;base64,AAAA'>"
                    "<script>undefinedFunction();</script></body></html>")
    line, errors = probe(page, tmp_path)
    assert line.startswith("images 0/2 errors [") and "missing.png" in line and "undefinedFunction" in line, line
    assert any("undefinedFunction" in e for e in errors), errors
