"""CLI: bad input exits 2 with one line; every command leaves JAX's 64-bit mode off."""
import json

import jax
import pytest

from quietrl.cli import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    assert not jax.config.jax_enable_x64  # checked after every precise command
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("argv, msg", [
    (["precise", "finetune", "--sampler", "ddim", "--init", "."], "unknown sampler"),
    (["precise", "finetune", "--sampler", "precise", "--eta", "-0.5", "--init", "."], "eta"),
    (["precise", "finetune", "--sampler", "precise", "--steps", "0", "--init", "."], "K"),
    (["precise", "consistency", "--steps", "0"], "K must be >= 1"),
])
def test_bad_input_exit_2(argv, msg, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "run"
    with pytest.raises(SystemExit) as e:
        main(["precise", "pretrain", "--out", str(out), "--set", "steps=200", "--set", "chunk=100",
              "--set", "batch_size=64"])
    assert e.value.code == 0
    assert not jax.config.jax_enable_x64
    return out


def test_pretrain_then_finetune(pretrained_run, tmp_path, capsys):
    code, out, _ = run(["precise", "finetune", "--sampler", "precise", "--iterations", "10", "--init",
                        str(pretrained_run), "--out", str(tmp_path / "ft"), "--set", "eval_noises=8"], capsys)
    assert code == 0 and "eval_ode_reward" in out
    metrics = (tmp_path / "ft" / "precise" / "finetune_precise" / "seed0" / "metrics.jsonl").read_text()
    assert len(metrics.splitlines()) >= 2


def test_checkpoint_of_another_model_exit_2(tmp_path, capsys):
    from quietrl.core.checkpoint import save_checkpoint
    import numpy as np

    save_checkpoint(tmp_path / "ck", "leo.pqn", {"x": 1}, {"w": np.zeros(3)}, 1)
    code, _, err = run(["precise", "finetune", "--sampler", "cps", "--init", str(tmp_path / "ck")], capsys)
    assert code == 2 and "leo.pqn" in err


def test_old_format_checkpoint_exit_2(tmp_path, capsys):
    """A pretrain checkpoint written before FlowConfig had ``task`` (session 1) is refused in one line."""
    import dataclasses

    import numpy as np
    from quietrl.core.checkpoint import save_checkpoint
    from quietrl.precise.flow import KIND
    from quietrl.precise.types import FlowConfig

    old = {k: v for k, v in dataclasses.asdict(FlowConfig()).items() if k != "task"}
    save_checkpoint(tmp_path / "ck", KIND, {**old, "seed": 0}, {"w": np.zeros(3)}, 1)
    code, _, err = run(["precise", "finetune", "--sampler", "precise", "--init", str(tmp_path / "ck")], capsys)
    assert code == 2 and "lacks task" in err and len(err.strip().splitlines()) == 1


def test_consistency_command(tmp_path, capsys):
    code, out, _ = run(["precise", "consistency", "--steps", "4,8", "--samples", "500", "--out",
                        str(tmp_path / "c")], capsys)
    assert code == 0 and "S1" in out and "S3" in out


def test_compare_tiny(tmp_path, capsys):
    sets = ["flow.steps=200", "flow.chunk=100", "grpo.iterations=10", "grpo.eval_noises=8", "seeds=1",
            "arms=flow_grpo,precise", "s3_steps=4", "s3_samples=500", "s1_steps=4"]
    argv = ["precise", "compare", "--quick", "--out", str(tmp_path / "cmp")]
    for s in sets:
        argv += ["--set", s]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "precise: final ODE-eval reward" in out
    summary = json.loads((tmp_path / "cmp" / "precise" / "compare" / "seed0" / "summary.json").read_text())
    assert any(r.get("paper") == "13.1-53.2%" for r in summary["rows"])
    assert (tmp_path / "cmp" / "precise" / "compare" / "seed0" / "figures" / "reward_curves.png").exists()
    assert (tmp_path / "cmp" / "precise" / "consistency" / "seed0" / "tables.md").exists()
