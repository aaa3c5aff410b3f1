"""Training loop: seen-goal sampling, success average, greedy test, resume, config errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.core.checkpoint import load_checkpoint
from quietrl.core.config import to_dict
from quietrl.core.errors import CheckpointMismatch, ConfigError
from quietrl.core.train import run_chunks
from quietrl.leo.train import TrainConfig, default_config, make_train
from quietrl.leo.types import success_rate

TINY = dict(map_size=8, wall_density=0.2, num_envs=16, num_steps=8, minibatch_size=64, epochs=1,
            trunk="64x2", updates_per_chunk=2, total_timesteps=16 * 8 * 6, lr=1e-3)


@pytest.fixture(scope="module")
def leo_trainer():
    return make_train(default_config("leo", **TINY))


@pytest.fixture(scope="module")
def trained(leo_trainer, tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt_full")
    init = leo_trainer.init(jax.random.PRNGKey(0))
    cfg = to_dict(leo_trainer.cfg)
    final = run_chunks(None, init, leo_trainer.chunk, 3, kind="leo/leo", config=cfg, checkpoint_dir=d)
    return init, final, cfg


def test_initial_seen_set_is_the_reset_observation(leo_trainer, trained):
    init, _, _ = trained
    seen = np.asarray(init.tracker.seen)
    centre = [i for i, n in enumerate(leo_trainer.genv.goal_names) if n == "cell (4,4)"]
    assert seen.sum() == 1 and seen[centre[0]]
    assert (np.asarray(init.tracker.goal) == centre[0]).all()  # only the seen goal can be commanded


def test_commanded_goals_are_seen_goals_and_seen_grows(trained):
    _, final, _ = trained
    seen = np.asarray(final.tracker.seen)
    assert seen.sum() > 1
    assert seen[np.asarray(final.tracker.goal)].all()
    assert seen[np.asarray(final.tracker.first_goal)].all()


def test_success_average_counts_unseen_goals_as_zero():
    succ = jnp.array([3.0, 0.0, 1.0, 0.0])
    fail = jnp.array([1.0, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(np.asarray(success_rate(succ, fail)), [0.75, 0.0, 1.0, 0.0])
    assert float(success_rate(succ, fail).mean()) == pytest.approx(1.75 / 4)


def test_live_success_metric_is_the_mean_over_all_goals(leo_trainer, trained):
    _, final, _ = trained
    _, m = leo_trainer.chunk(final)  # one more chunk; its last metric reflects its final tracker
    state, _ = leo_trainer.chunk(final)
    expected = float(success_rate(state.tracker.succ, state.tracker.fail).mean())
    assert float(m["live_success"][-1]) == pytest.approx(expected, abs=1e-6)
    assert float(state.tracker.succ.sum() + state.tracker.fail.sum()) > 0


def test_greedy_test_counts_the_reset_observation(leo_trainer, trained):
    _, final, _ = trained
    got = np.asarray(leo_trainer.greedy_test(final.params, jax.random.PRNGKey(5)))
    assert got.shape == (leo_trainer.genv.num_goals,)
    assert got[leo_trainer.genv.goal_names.index("cell (4,4)")]  # the start cell is reached at reset


def test_resume_equals_uninterrupted_run(leo_trainer, trained, tmp_path):
    init, final, cfg = trained
    run_chunks(None, init, leo_trainer.chunk, 2, kind="leo/leo", config=cfg, checkpoint_dir=tmp_path)
    resumed = run_chunks(None, init, leo_trainer.chunk, 3, kind="leo/leo", config=cfg, checkpoint_dir=tmp_path)
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoint_of_another_config_is_refused(leo_trainer, trained, tmp_path):
    init, _, cfg = trained
    run_chunks(None, init, leo_trainer.chunk, 1, kind="leo/leo", config=cfg, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatch):
        load_checkpoint(tmp_path, "leo/leo", {**cfg, "lr": 2e-4}, init)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["pqn", "pqn_her", "relabel_all"])
def test_baseline_learners_run_a_chunk(algo):
    tr = make_train(default_config(algo, **{**TINY, "num_steps": 2, "minibatch_size": 32,
                                            "updates_per_chunk": 4, "total_timesteps": 16 * 2 * 8}))
    state, m = tr.chunk(tr.init(jax.random.PRNGKey(0)))
    assert np.isfinite(np.asarray(m["loss"])).all()
    assert int(state.update) == 4


@pytest.mark.parametrize("bad,match", [
    (dict(algo="dqn"), "algo"), (dict(env="atari"), "env"), (dict(trunk="8x8"), "trunk"),
    (dict(minibatch_size=100), "minibatch_size"), (dict(total_timesteps=10), "total_timesteps"),
    (dict(gamma=1.5), "gamma"),
])
def test_bad_configs_name_the_field(bad, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**{**TINY, **bad})


@pytest.mark.parametrize("algo", ["dual_leo_pqn", "dual_leo_ppo"])
def test_dual_leo_resume_equals_uninterrupted_run(algo, tmp_path):
    # Both networks (the acting UVFA or PPO student and the LEO teacher) and both optimiser states must
    # survive a checkpoint: a run cut after 1 of 2 chunks and resumed ends bit-identical.
    cfg_kw = {**TINY, "num_steps": 8, "updates_per_chunk": 1, "total_timesteps": 16 * 8 * 2,
              "leo_minibatch_size": 64, "leo_epochs": 1}
    tr = make_train(default_config(algo, **cfg_kw))
    init = tr.init(jax.random.PRNGKey(0))
    cfg = to_dict(tr.cfg)
    full = run_chunks(None, init, tr.chunk, 2, kind=f"leo/{algo}", config=cfg, checkpoint_dir=tmp_path / "a")
    run_chunks(None, init, tr.chunk, 1, kind=f"leo/{algo}", config=cfg, checkpoint_dir=tmp_path / "b")
    resumed = run_chunks(None, init, tr.chunk, 2, kind=f"leo/{algo}", config=cfg, checkpoint_dir=tmp_path / "b")
    assert int(resumed.update) == 2
    assert resumed.aux_params is not None and resumed.aux_opt_state is not None
    changed = [not np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(jax.tree.leaves(init.aux_params), jax.tree.leaves(full.aux_params))]
    assert any(changed)  # the LEO network trained, so equality below is not vacuous
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
