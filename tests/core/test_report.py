"""The report in a real browser: every section has a size and every image decodes (natural width > 0)."""

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from quietrl.core.plotting import new_figure
from quietrl.core.report import build_report
from quietrl.core.runs import RunDir
from quietrl.core.summary import Row
from quietrl.registry import NAMES

_PROBE = """
<pre id="qrl-probe"></pre>
<script>
window.addEventListener('load', () => {
  const sections = [...document.querySelectorAll('section')].map(s => {
    const r = s.getBoundingClientRect(); return {id: s.id, w: r.width, h: r.height};
  });
  const images = [...document.images].map(i => ({alt: i.alt, w: i.naturalWidth, complete: i.complete}));
  document.getElementById('qrl-probe').textContent = 'QRL' + JSON.stringify({sections, images}) + 'QRL';
});
</script>
"""


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but no chromium is installed (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium installed")
    return exe


def probe_in_browser(report: Path, tmp_path: Path) -> dict:
    """Load a copy of ``report`` in headless Chromium and return the sizes the page measured itself."""
    page = tmp_path / "probe.html"
    page.write_text(report.read_text().replace("</body>", _PROBE + "</body>"))
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
           page.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r"QRL(.*?)QRL", r.stdout, re.S)
    assert m, f"page did not report back: {r.stderr[-2000:]}"
    return json.loads(m.group(1))


def report_is_sound(result: dict) -> bool:
    return (len(result["sections"]) == len(NAMES)
            and all(s["w"] > 0 and s["h"] > 0 for s in result["sections"])
            and all(i["w"] > 0 for i in result["images"]))


@pytest.fixture()
def run_with_figures(tmp_path):
    run = RunDir.create(tmp_path / "run", {"quick": True, "only": None}, seed=0)
    for sub in ("leo", "precise"):
        st = run.stage(sub, "demo", 0)
        with st.running():
            fig, ax = new_figure()
            ax.plot([0, 1], [0, 1])
            st.save_figure(fig, f"{sub}_line")
            st.write_summary([Row("q", 1.0, paper=2.0, source="arXiv:0000.00000, Table 1")])
        run.write_sub_status(sub, "done", 1.0)
    for sub in NAMES:
        if sub not in ("leo", "precise"):
            run.write_sub_status(sub, "not_implemented")
    return run


def test_report_renders_every_section_and_image(run_with_figures, tmp_path):
    report = build_report(run_with_figures)
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 2
    result = probe_in_browser(report, tmp_path)
    assert [s["id"] for s in result["sections"]] == list(NAMES)
    assert len(result["images"]) == 2
    assert report_is_sound(result), result


def test_browser_check_catches_a_broken_image(run_with_figures, tmp_path):
    report = build_report(run_with_figures)
    html = report.read_text()
    broken = base64.b64encode(b"\x89PNG\r\n\x1a\nnot really a png").decode()
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", f"data:image/png;base64,{broken}", html, count=1)
    report.write_text(html)
    result = probe_in_browser(report, tmp_path)
    assert not report_is_sound(result)
    assert sorted(i["w"] for i in result["images"])[0] == 0
