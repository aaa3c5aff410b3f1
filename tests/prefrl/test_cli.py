import pytest

from quietrl.cli import main


def _run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["prefrl", *args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_run_command_small(capsys):
    code, out, err = _run(capsys, "run", "--algo", "ucb", "--env", "chain", "--episodes", "20")
    assert code == 0, err
    assert "cumulative regret" in out and "seconds per episode" in out
    code, out, err = _run(capsys, "run", "--env", "chain", "--episodes", "20", "--set", "solver=lbfgs")
    assert code == 0, err


@pytest.mark.parametrize(
    "args, needle",
    [
        (("run", "--episodes", "0"), "episodes"),
        (("run", "--horizon", "0"), "horizon"),
        (("run", "--env", "maze"), "unknown env 'maze'"),
        (("run", "--algo", "ppo"), "unknown 'ppo'"),
        (("run", "--set", "kernel=gauss"), "gauss"),
        (("run", "--set", "solver=sgd"), "solver"),
        (("regret", "--algos", "ucb,foo"), "unknown 'foo'"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, args, needle):
    code, out, err = _run(capsys, *args)
    assert code == 2
    assert needle in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
