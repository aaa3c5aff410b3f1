"""CLI: bad input gives one line and exit code 2."""

import pytest

from quietrl.cli import main


@pytest.mark.parametrize("argv,msg", [
    (["leo", "train", "--algo", "nope"], "unknown algo"),
    (["leo", "train", "--env", "atari"], "unknown env"),
    (["leo", "train", "--num-goals", "109", "--set", "map_size=12"], "holds 108 goals"),
    (["leo", "train", "--set", "lr=abc"], "lr"),
    (["leo", "train", "--env", "craftax", "--num-goals", "513"], "holds 512 goals"),
    (["leo", "train", "--algo", "ppo", "--set", "minibatch_size=1000"], "minibatch_size"),
    (["leo", "speedup", "--ks", "8,x"], "--ks"),
    (["leo", "compare", "--algos", "leo,dqn"], "unknown algo"),
    (["leo", "compare", "--lrs", "1e-3,fast"], "--lrs"),
])
def test_bad_input_exits_2_with_one_line(argv, msg, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(argv + (["--out", str(tmp_path / "r")] if argv[1] in ("train", "compare") else []))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and msg in err and "\n" not in err
    assert not (tmp_path / "r").exists()
