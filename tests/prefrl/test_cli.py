import dataclasses

import pytest

from quietrl.cli import main
from quietrl.prefrl.envs import GriddedMDP, chain


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


class _SpikyChain(GriddedMDP):
    """A faulty user MDP: its observed reward at episode 3, step 2 of trajectory 1 exceeds the declared range."""

    def rollout(self, policy, rng):
        tau = super().rollout(policy, rng)
        calls = self.calls[0] = self.calls[0] + 1  # two rollouts per episode: call 5 = episode 3, trajectory 1
        if calls == 5:
            rewards = tau.rewards.copy()
            rewards[1] = 1.5
            tau = dataclasses.replace(tau, rewards=rewards)
        return tau


def spiky_chain(horizon=None):
    base = chain() if horizon is None else chain(horizon=horizon)
    env = _SpikyChain(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    object.__setattr__(env, "calls", [0])
    return env


def not_an_mdp():
    return object()


def test_user_mdp_factory_runs_and_bad_reward_names_episode_and_step(capsys):
    code, out, err = _run(capsys, "run", "--env", f"{__name__}:spiky_chain", "--episodes", "2")
    assert code == 0, err  # a user factory runs like a built-in env
    code, out, err = _run(capsys, "run", "--env", f"{__name__}:spiky_chain", "--episodes", "6")
    assert code == 2
    assert "reward 1.5 outside the declared range [0.0, 1.0] at episode 3, step 2 (trajectory 1)" in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    for env, needle in ((f"{__name__}:not_an_mdp", "not a GriddedMDP"), ("no_such_module_xyz:f", "cannot load")):
        code, out, err = _run(capsys, "run", "--env", env, "--episodes", "2")
        assert code == 2 and needle in err and err.strip().count("\n") == 0, err
