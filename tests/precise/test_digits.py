"""The 8x8 digits task: data, reward, the independent SVM check, a tiny model and GRPO on 64 dimensions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.core.errors import ConfigError
from quietrl.precise import digits
from quietrl.precise.types import FlowConfig, GRPOConfig, digits_flow_config


@pytest.fixture(scope="module")
def data():
    return digits.load_data()


def test_data_scaled_and_reward_classifier_fits(data):
    x, y = data
    assert x.shape == (1797, 64) and x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert digits._fitted()["train_acc"] > 0.93  # LDA on digits: about 0.96


def test_reward_penalises_residual_noise_not_the_class(data):
    x, y = data
    task = digits.DigitsTask()
    pref, q = map(np.asarray, task.reward_parts(jnp.asarray(x), jnp.asarray(y)))
    assert pref.max() <= 0 and pref.min() >= digits.PREF_FLOOR and q.max() <= 0 and q.min() >= -1
    assert q.mean() > -0.15  # the data itself scores near the top
    noisy = x + 0.3 * np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    pref_n, q_n = map(np.asarray, task.reward_parts(jnp.asarray(noisy), jnp.asarray(y)))
    assert q_n.mean() < q.mean() - 0.5  # sampler noise of std 0.3 costs most of q ...
    assert abs(pref_n.mean() - pref.mean()) < 0.2  # ... while the class stays recognisable
    wrong = np.asarray(task.reward_parts(jnp.asarray(x), jnp.asarray((y + 1) % 10))[0])
    assert wrong.mean() < pref.mean() - 3


def test_sample_draws_images_of_the_prompted_class(data):
    x, y = data
    prompts = jnp.repeat(jnp.arange(10), 30)
    s = np.asarray(digits.DigitsTask().sample(jax.random.PRNGKey(0), prompts))
    rows = [np.nonzero(np.all(x == img, 1))[0] for img in s]
    assert all(r.size >= 1 for r in rows)
    assert all(np.all(y[r] == p) for r, p in zip(rows, np.asarray(prompts)))


def test_svm_check_is_independent_and_exact_on_data(data):
    x, y = data
    np.testing.assert_array_equal(digits.class_accuracy(x, y), 1.0)
    np.testing.assert_array_equal(digits.class_accuracy(x, (y + 1) % 10), 0.0)


def test_config_validation():
    with pytest.raises(ConfigError, match="num_prompts must be 10"):
        FlowConfig(task="digits", num_prompts=8)
    with pytest.raises(ConfigError, match="task"):
        FlowConfig(task="cifar")


def test_tiny_digits_model_and_grpo_in_64_dimensions():
    from quietrl.precise.flow import pretrain, sample_model
    from quietrl.precise.grpo import finetune, make_arm, make_trainer

    cfg = digits_flow_config(steps=100, batch_size=64, hidden=64, depth=2)  # shapes and invariants only
    params = pretrain(cfg, seed=0)
    assert sample_model(cfg, params, np.arange(10), 4).shape == (10, 64)
    g = GRPOConfig(iterations=10, eval_noises=8, prompt_repeats=1, group_size=4)
    trainer = make_trainer(cfg, g)
    state, recs = finetune(trainer, params, make_arm("precise", g), seed=0, checkpoint=False)
    assert int(state.iteration) == 10 and all(np.isfinite(v) for r in recs for v in r.values())
    # same model, same evaluation noises: the ODE evaluation cannot depend on the arm, the SDE one does
    ev = {a: trainer.evaluate(params, make_arm(a, g), jax.random.PRNGKey(1)) for a in ("flow_grpo", "precise")}
    assert float(ev["flow_grpo"]["eval_ode_reward"]) == float(ev["precise"]["eval_ode_reward"])
    assert float(ev["flow_grpo"]["eval_sde_pref"]) != float(ev["precise"]["eval_sde_pref"])


@pytest.mark.slow
def test_digits_acceptance_every_sampler():
    """Issue 5: ODE samples of each class are classified as that class >= 80% of the time, after
    pretraining and after GRPO with every sampler (classifier: the SVM, not the reward's LDA)."""
    from quietrl.precise.experiment import digits_accuracy
    from quietrl.precise.flow import pretrain
    from quietrl.precise.grpo import finetune, make_arm, make_trainer, model_params

    cfg = digits_flow_config(steps=2000)
    params = pretrain(cfg, seed=0)
    assert digits_accuracy(cfg, params, 10).min() >= 0.8
    g = GRPOConfig(iterations=30, eval_noises=16)
    trainer = make_trainer(cfg, g)
    for arm in ("flow_grpo", "cps", "dance_grpo", "precise", "dance_precise", "mixgrpo"):
        state, _ = finetune(trainer, params, make_arm(arm, g), seed=0, checkpoint=False)
        acc = digits_accuracy(cfg, model_params(params, state.params, g.lora_rank), 10)
        assert acc.min() >= 0.8, (arm, acc)
