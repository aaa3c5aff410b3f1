"""The quietrl CLI as a user meets it: a subprocess, one-line errors with exit code 2, nothing damaged."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quietrl.registry import NAMES

HEAVY = ("jax", "jaxlib", "ray", "craftax", "flax", "optax", "matplotlib", *(f"quietrl.{n}" for n in NAMES))


def quietrl(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "quietrl.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "QUIETRL_NO_PROGRESS": "1"})


def _tree_digest(path: Path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_help_lists_every_subpackage_and_version():
    r = quietrl("--help")
    assert r.returncode == 0
    for name in (*NAMES, "reproduce", "report"):
        assert name in r.stdout
    v = quietrl("--version")
    assert v.returncode == 0 and v.stdout.strip().startswith("quietrl 0.")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["reproduce", "--only", "nope"], ["bogus"],
                                  ["reproduce", "--help"]])
def test_help_and_errors_import_nothing_heavy(argv):
    code = ("import sys\nfrom quietrl.cli import main\nsys.argv=['quietrl', *%r]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in %r if m in sys.modules))" % (argv, HEAVY))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "HEAVY []", r.stdout + r.stderr


def _assert_one_line_error(r, needle):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_only_lists_choices():
    _assert_one_line_error(quietrl("reproduce", "--only", "leo,nope"),
                           "unknown sub-package 'nope'; choose from: prefrl, proofsearch, goalgen, arms, leo, precise")


def test_unknown_option_and_command():
    _assert_one_line_error(quietrl("reproduce", "--bogus"), "No such option '--bogus'")
    _assert_one_line_error(quietrl("nonsense"), "No such command 'nonsense'")
    _assert_one_line_error(quietrl("reproduce", "--seed", "x"), "'x' is not a valid integer")
    _assert_one_line_error(quietrl("reproduce", "--executor", "dask"), "choose from: local, ray")


def test_unwritable_out_below_a_file(tmp_path):
    f = tmp_path / "plainfile"
    f.write_text("keep me")
    _assert_one_line_error(quietrl("reproduce", "--quick", "--out", str(f / "run")),
                           f"{f} is a file, not a directory")
    assert f.read_text() == "keep me"


def _make_run(tmp_path):
    from quietrl.core.runs import RunDir

    run = RunDir.create(tmp_path / "run", {"quick": True, "only": ["leo"], "executor": "local",
                                           "ray_address": None}, seed=3)
    st = run.stage("leo", "speed", 3)
    st.log_metrics({"x": 1})
    return run.path


def test_resume_errors_leave_the_run_untouched(tmp_path):
    path = _make_run(tmp_path)
    before = _tree_digest(path)
    _assert_one_line_error(quietrl("reproduce", "--resume", str(path), "--seed", "4"),
                           "options differ from the run's config.json: --seed 4 (run has 3)")
    _assert_one_line_error(quietrl("reproduce", "--resume", str(path), "--only", "arms"),
                           "--only ['arms'] (run has ['leo'])")
    _assert_one_line_error(quietrl("reproduce", "--resume", str(tmp_path)), "not a quietrl run directory")
    _assert_one_line_error(quietrl("reproduce", "--resume", str(tmp_path / "nothere")), "not a run directory")
    _assert_one_line_error(quietrl("reproduce", "--out", str(path)), "already holds a run")
    assert _tree_digest(path) == before


def test_report_on_non_run_is_an_error(tmp_path):
    _assert_one_line_error(quietrl("report", str(tmp_path)), "not a quietrl run directory")


def test_reproduce_marks_failures_runs_the_rest_and_reports(tmp_path, monkeypatch, capsys):
    """In-process with fake sub-packages: one writes a stage, one raises, the rest are not implemented."""
    import types

    from quietrl import cli
    from quietrl.core.plotting import new_figure
    from quietrl.core.summary import Row

    def good(run, quick, seed, executor):
        st = run.stage("prefrl", "regret", seed)
        if st.done:
            return
        with st.running():
            fig, ax = new_figure()
            ax.plot([1, 2, 3], [1, 4, 9])
            st.save_figure(fig, "curve")
            st.write_summary([Row("slope", 0.5, ci=(0.4, 0.6))])

    def bad(run, quick, seed, executor):
        raise RuntimeError("deliberate failure")

    monkeypatch.setitem(sys.modules, "quietrl.prefrl.experiment", types.SimpleNamespace(reproduce=good))
    monkeypatch.setitem(sys.modules, "quietrl.arms.experiment", types.SimpleNamespace(reproduce=bad))
    for n in NAMES:
        if n not in ("prefrl", "arms"):
            monkeypatch.setitem(sys.modules, f"quietrl.{n}.experiment", None)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        cli.main(["reproduce", "--quick", "--out", str(out), "--seed", "2"])
    assert e.value.code == 1
    status = {n: json.loads((out / n / "status.json").read_text())["status"] for n in NAMES}
    assert status == {"prefrl": "done", "arms": "failed", "proofsearch": "not_implemented",
                      "goalgen": "not_implemented", "leo": "not_implemented", "precise": "not_implemented"}
    html = (out / "report.html").read_text()
    for n in NAMES:
        assert f"<section id='{n}'>" in html
    assert "deliberate failure" in html and "not implemented yet" in html and "data:image/png;base64," in html
    assert "Traceback" in (out / "log.txt").read_text()
    # resume: finished sub-packages are skipped, the failed one runs again
    with pytest.raises(SystemExit) as e:
        cli.main(["reproduce", "--resume", str(out)])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "[prefrl] already done, skipped" in err and "[arms] failed" in err


@pytest.mark.parametrize("argv, needle", [
    (["arms", "train", "--set", "noequals"], "--set 'noequals': expected key=value"),
    (["arms", "train", "--set", "bogus=1"], "--set bogus: unknown key for TrainConfig; valid keys: method"),
])
def test_malformed_set_names_the_bad_item(argv, needle):
    _assert_one_line_error(quietrl(*argv), needle)
