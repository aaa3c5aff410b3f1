"""GRPO pieces: advantages, arms as data, one compiled program for all arms, the learning check."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.core.errors import ConfigError
from quietrl.precise import grpo
from quietrl.precise.flow import pretrain
from quietrl.precise.types import FlowConfig, GRPOConfig


def test_group_advantages_known_values():
    r = jnp.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])
    a = np.asarray(grpo.group_advantages(r))
    std = np.std([1, 2, 3, 4])
    np.testing.assert_allclose(a[0], (np.array([1, 2, 3, 4]) - 2.5) / (std + 1e-4), rtol=1e-6)
    np.testing.assert_array_equal(a[1], 0.0)  # zero-std group gives no signal
    big = np.asarray(grpo.group_advantages(jnp.array([[0.0] * 99 + [1.0]])))
    assert big.max() == pytest.approx(5.0)  # clipped at +5


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown sampler"):
        GRPOConfig(sampler="ddpm")
    with pytest.raises(ConfigError, match="eta"):
        GRPOConfig(eta=-1.0)
    with pytest.raises(ConfigError, match="K"):
        GRPOConfig(num_steps=0)


def test_arm_coefficients_and_mixgrpo_window():
    cfg = GRPOConfig(num_steps=10, iterations=100)
    arm = grpo.make_arm("mixgrpo", cfg)
    b, c, trained = grpo.arm_coefficients(arm, jnp.int32(25))  # window at position 2
    assert np.asarray(trained).tolist() == [False, False, True, True, True, True, False, False, False, False]
    assert float(c[0]) == pytest.approx(1e-6) and float(c[3]) > 0.1
    b, c, trained = grpo.arm_coefficients(grpo.make_arm("precise", cfg), jnp.int32(7))
    assert np.asarray(trained).sum() == 9 and not bool(trained[-1])


def test_lora_merge_starts_at_base():
    params = {"params": {"Dense_0": {"kernel": jnp.ones((3, 4)), "bias": jnp.zeros(4)}}}
    lora = grpo.init_lora(params, 2, jax.random.PRNGKey(0))
    merged = grpo.merge_lora(params, lora)
    np.testing.assert_array_equal(merged["params"]["Dense_0"]["kernel"], 1.0)
    lora["params"]["Dense_0"]["kernel"]["b"] = jnp.ones((2, 4))
    merged = grpo.merge_lora(params, lora)
    a = lora["params"]["Dense_0"]["kernel"]["a"]
    np.testing.assert_allclose(merged["params"]["Dense_0"]["kernel"], 1.0 + a @ jnp.ones((2, 4)), rtol=1e-6)


TINY_FLOW = FlowConfig(steps=1500, batch_size=256, lr=2e-3, chunk=500)


@pytest.fixture(scope="module")
def pretrained():
    return pretrain(TINY_FLOW, seed=0)


# constant lr: annealing over only 20 iterations would halve the mean step
GRPO20 = GRPOConfig(iterations=20, eval_every=10, eval_noises=16, anneal_lr=False)


@pytest.fixture(scope="module")
def trainer20():
    return grpo.make_trainer(TINY_FLOW, GRPO20)  # compiled once for every test below


def test_pretrained_model_reproduces_modes(pretrained):
    from quietrl.precise.flow import mode_weight_error

    werr, q = mode_weight_error(TINY_FLOW, pretrained, n_per_prompt=1024, num_steps=100)
    assert werr < 0.07  # the quick model (3000 steps) reaches < 0.05; this one trains half as long
    assert q > -0.6  # samples sit on the narrow modes (data itself has mean q = -0.2)


def test_all_arms_share_one_program_and_same_noise(pretrained, trainer20):
    cfg, trainer = GRPO20, trainer20
    out = {}
    for name in ("flow_grpo", "precise"):
        state, recs = grpo.finetune(trainer, pretrained, grpo.make_arm(name, cfg), seed=0, checkpoint=False)
        out[name] = recs
        assert int(state.iteration) == 20
        assert all(np.isfinite(v) for r in recs for v in r.values())
    # the ODE evaluation before training is the same model on the same noises for every arm
    assert out["flow_grpo"][0]["eval_ode_reward"] == out["precise"][0]["eval_ode_reward"]
    # EM residual noise lowers the SDE-sample quality term well below Precise's clean samples
    assert out["flow_grpo"][0]["eval_sde_q"] < out["precise"][0]["eval_sde_q"] - 0.2


def test_twenty_iterations_raise_reward(pretrained, trainer20):
    """After a <= 30 s pretraining, 20 GRPO iterations (Precise) raise the reward by > 3 standard errors,
    measured on the same 4096 sampler noises before and after (paired)."""
    from quietrl.precise.env import MixtureTask
    from quietrl.precise.flow import make_sampler_fn
    from quietrl.precise.samplers import make_schedule
    from quietrl.precise.schedules import make_grid

    cfg, trainer = GRPO20, trainer20
    state, _ = grpo.finetune(trainer, pretrained, grpo.make_arm("precise", cfg), seed=0, checkpoint=False)
    tuned = grpo.merge_lora(pretrained, state.params)
    sched = make_schedule("precise", make_grid("shifted", 10))
    prompts = jnp.repeat(jnp.arange(8), 512)
    x1 = jax.random.normal(jax.random.PRNGKey(123), (prompts.shape[0], 2))
    sample = make_sampler_fn(TINY_FLOW)
    task = MixtureTask()
    before = task.reward(sample(pretrained, jax.random.PRNGKey(7), x1, prompts, sched), prompts)
    after = task.reward(sample(tuned, jax.random.PRNGKey(7), x1, prompts, sched), prompts)
    d = np.asarray(after - before)
    se = d.std(ddof=1) / np.sqrt(d.size)
    print(f"reward gain {d.mean():.4f}, SE {se:.4f}")
    assert d.mean() > 3 * se, (d.mean(), se)


def test_full_model_finetuning_option(pretrained):
    """lora_rank = 0 trains a copy of the whole model; the base stays untouched and LoRA stays the default."""
    with pytest.raises(ConfigError, match="lora_rank"):
        GRPOConfig(lora_rank=-1)
    assert GRPOConfig().lora_rank >= 1  # LoRA (rank 8) is the default
    cfg = GRPOConfig(iterations=10, eval_noises=8, prompt_repeats=1, group_size=4, lora_rank=0, lr=1e-3)
    trainer = grpo.make_trainer(TINY_FLOW, cfg)
    state0 = trainer.init_state(pretrained)
    assert jax.tree_util.tree_structure(state0.params) == jax.tree_util.tree_structure(pretrained)
    state, recs = grpo.finetune(trainer, pretrained, grpo.make_arm("precise", cfg), seed=0, checkpoint=False)
    assert grpo.model_params(pretrained, state.params, 0) is state.params
    moved = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(state.params),
                                                              jax.tree_util.tree_leaves(pretrained)))
    assert moved > 1e-5 and all(np.isfinite(v) for r in recs for v in r.values())
