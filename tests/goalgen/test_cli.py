import types

import pytest

from quietrl.cli import main
from quietrl.goalgen.cli import cli


@pytest.fixture
def _quietrl(capsys):
    """Run `quietrl goalgen ...` in-process through the top-level entry point (exit code + output)."""
    def run(*args, tmp_path=None):
        with pytest.raises(SystemExit) as e:
            main(["goalgen", *args])
        out = capsys.readouterr()
        return types.SimpleNamespace(returncode=e.value.code, stdout=out.out, stderr=out.err)
    return run


def test_group_name_and_commands():
    assert cli.name == "goalgen"
    assert {"train-pipelines", "evaluate", "fit-lpg", "report", "reproduce", "study"} <= set(cli.commands)


@pytest.mark.parametrize("args,fragment", [
    (["parse", "red_sqaure"], "unknown shape 'sqaure'"),
    (["parse", "purple_cross_then_red_plus"], "unknown colour 'purple'"),
    (["fit-lpg", "/nonexistent/missing.csv"], "no such dataset"),
    (["study"], "give --out DIR"),
    (["study", "--resume", "/nonexistent/run"], "not a run directory"),
    (["study", "--out", "/tmp/never-created-goalgen-study", "--set", "seeds=0"], "seeds"),
])
def test_bad_input_is_one_line_exit_2(args, fragment, tmp_path, _quietrl):
    r = _quietrl(*args, tmp_path=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0]


def test_empty_split_is_exit_2(tmp_path, _quietrl):
    csv = tmp_path / "d.csv"
    csv.write_text("pipeline,family,seed,obj_a,obj_b,n_episodes,n_a,n_b,n_none\n"
                   "red_cross,A,0,red_plus,blue_cross,4,2,1,1\n"
                   "blue_plus,A,0,red_plus,blue_cross,4,1,2,1\n")
    r = _quietrl("fit-lpg", str(csv), "--split", "two_to_three", "--steps", "2", tmp_path=tmp_path)
    assert r.returncode == 2 and "empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_parse_prints_stages(tmp_path, _quietrl):
    r = _quietrl("parse", "red_cross@0.25_then_blue_plus", tmp_path=tmp_path)
    assert r.returncode == 0 and "updates=20" in r.stdout and "updates=60" in r.stdout
