"""CLI: bad input ends with one line on stderr and exit code 2; the equilibria and oscillation commands run."""

import pytest

from quietrl.cli import main


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(["arms", *argv])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_unknown_method_exit_2(capsys):
    code, _, err = run_cli(capsys, "train", "--method", "magic")
    assert code == 2 and err.count("\n") == 1 and "unknown 'magic'" in err


def test_malformed_map_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.map"
    bad.write_text("type octile\nheight 2\nwidth 3\nmap\n...\n.x.\n")
    scen = tmp_path / "bad.scen"
    scen.write_text("version 1\n")
    code, _, err = run_cli(capsys, "train", "--map", str(bad), "--scen", str(scen), "--agents", "1")
    assert code == 2 and err.count("\n") == 1 and "bad.map:6:2: unknown map character 'x'" in err


def test_malformed_scen_exit_2(capsys, tmp_path):
    m = tmp_path / "ok.map"
    m.write_text("type octile\nheight 2\nwidth 3\nmap\n...\n...\n")
    scen = tmp_path / "bad.scen"
    scen.write_text("version 1\n0\tok.map\t3\t2\t0\t0\n")
    code, _, err = run_cli(capsys, "train", "--map", str(m), "--scen", str(scen), "--agents", "1")
    assert code == 2 and "expected 9 fields" in err


def test_more_agents_than_free_cells_exit_2(capsys, tmp_path):
    m = tmp_path / "tiny.txt"
    m.write_text("..#\n###\n")
    code, _, err = run_cli(capsys, "train", "--map", str(m), "--agents", "3")
    assert code == 2 and err.count("\n") == 1 and "3 agents but only 2" in err


def test_bad_set_override_exit_2(capsys):
    code, _, err = run_cli(capsys, "train", "--set", "nonsense=1")
    assert code == 2 and "nonsense" in err


def test_equilibria_matrix(capsys):
    code, out, _ = run_cli(capsys, "equilibria", "--game", "matrix")
    assert code == 0 and "matching_pennies" in out and "[0.5, 0.5]" in out


def test_oscillation_demo(capsys):
    code, out, _ = run_cli(capsys, "oscillation", "--demo", "--surrogates", "200")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("noisy sinusoid: FLAGGED") and lines[1].startswith("AR(1) noise: not flagged")


def test_oscillation_bad_file_exit_2(capsys, tmp_path):
    f = tmp_path / "curve.txt"
    f.write_text("0.1 0.2 oops")
    code, _, err = run_cli(capsys, "oscillation", str(f))
    assert code == 2 and "expected numbers" in err


def test_compare_bad_study_override_exit_2(capsys):
    code, _, err = run_cli(capsys, "compare", "--set", "methods=sparse,magic")
    assert code == 2 and err.count("\n") == 1 and "unknown method 'magic'" in err


def test_sweep_unknown_executor_exit_2(capsys):
    code, _, err = run_cli(capsys, "sweep", "--executor", "cluster")
    assert code == 2 and err.count("\n") == 1 and "unknown executor 'cluster'" in err
