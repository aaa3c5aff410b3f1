"""The README's main job end to end: `quietrl reproduce --quick` (slow: minutes; run with -m slow)."""

import json
import os
import subprocess
import sys

import pytest

from quietrl.registry import NAMES


@pytest.mark.slow
def test_quick_reproduction_writes_a_report_naming_every_subpackage(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "quietrl.cli", "reproduce", "--quick", "--out", str(out)],
                       capture_output=True, text=True, env={**os.environ, "QUIETRL_NO_PROGRESS": "1"})
    assert r.returncode == 0, r.stderr[-4000:]
    html = (out / "report.html").read_text()
    for name in NAMES:
        assert f"<section id='{name}'>" in html
        status = json.loads((out / name / "status.json").read_text())
        assert status["status"] in ("done", "not_implemented"), (name, status)
        print(f"{name}: {status['status']} {status.get('wall_s')}")
