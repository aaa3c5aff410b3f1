"""Known numbers for every sampler's unified Gaussian step (spec sections 2-4; tolerance 1e-3)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from quietrl.core.errors import UserError
from quietrl.precise import samplers as S
from quietrl.precise.schedules import flux_grid, make_grid, shifted_grid, uniform_grid

TOL = 1e-3


def test_grids_known_points():
    g = shifted_grid(10)
    assert g.dtype == np.float64 and g[0] == 1.0 and g[-1] == 0.0
    assert g[9] == pytest.approx(0.25, abs=1e-12)  # 3u/(1+2u) at u = 0.1
    f = flux_grid(20)
    assert f[1] == pytest.approx(0.992, abs=TOL) and f[-2] == pytest.approx(0.263, abs=TOL)
    assert f[10] == pytest.approx(0.872, abs=TOL)
    assert np.allclose(uniform_grid(4), [1, 0.75, 0.5, 0.25, 0])
    with pytest.raises(UserError):
        make_grid("cosine", 10)
    with pytest.raises(UserError):
        uniform_grid(0)


def test_schedule_is_float32_built_from_float64():
    sched = S.make_schedule("precise", shifted_grid(10))
    assert all(a.dtype == jnp.float32 and a.shape == (10,) for a in sched)
    assert float(sched.c[-1]) == pytest.approx(S.STD_FLOOR)  # floor, not 0


def _sum_excess(name, grid):
    b, c = S.step_coefficients(name, grid)
    return np.sum(b**2 + c**2 - grid[1:] ** 2)


def test_flow_grpo_known_numbers_shift3_k10():
    g = shifted_grid(10, 3.0)
    assert _sum_excess("flow_grpo", g) == pytest.approx(0.413, abs=TOL)
    b, c = S.step_coefficients("flow_grpo", g)
    assert (b[-1], c[-1]) == (pytest.approx(-0.082, abs=TOL), pytest.approx(0.202, abs=TOL))


def test_dance_last_step_known_numbers():
    b, c = S.step_coefficients("dance_grpo", shifted_grid(10))
    assert (b[-1], c[-1]) == (pytest.approx(-0.045, abs=TOL), pytest.approx(0.150, abs=TOL))
    assert _sum_excess("dance_grpo", shifted_grid(10)) == pytest.approx(0.038, abs=TOL)


def test_twenty_step_shifted_grid_known_numbers():
    g = flux_grid(20)
    _, c_fg = S.step_coefficients("flow_grpo", g)
    _, c_p = S.step_coefficients("precise", g)
    _, c_cps = S.step_coefficients("cps", g)
    _, c_d = S.step_coefficients("dance_grpo", g)
    assert c_fg[-1] == pytest.approx(0.215, abs=TOL)
    assert c_fg[0] == pytest.approx(0.70, abs=5e-3) and c_fg[1] == pytest.approx(0.73, abs=5e-3)
    assert c_p[0] == pytest.approx(0.992, abs=TOL)
    assert c_p[1] == pytest.approx(0.89, abs=5e-3) and c_p[-2] == pytest.approx(0.24, abs=5e-3)
    assert c_cps[0] == pytest.approx(0.88, abs=5e-3)
    assert c_d[0] == pytest.approx(0.026, abs=TOL) and c_d[-1] == pytest.approx(0.154, abs=TOL)


@pytest.mark.parametrize("name", ["ode", "cps", "precise", "dance_precise"])
def test_coefficient_preserving_and_clean(name):
    for k in (1, 6, 10, 37):
        g = shifted_grid(k)
        b, c = S.step_coefficients(name, g)
        np.testing.assert_allclose(b**2 + c**2, g[1:] ** 2, atol=1e-12)
        assert b[-1] == 0.0 and c[-1] == 0.0


def test_precise_endpoints_and_eta_zero_is_ode():
    g = shifted_grid(10)
    b, c = S.step_coefficients("precise", g)
    assert b[0] == 0.0 and c[0] == pytest.approx(g[1])  # full refresh at t = 1
    b0, c0 = S.step_coefficients("precise", g, eta=0.0)
    np.testing.assert_array_equal(b0, g[1:])
    np.testing.assert_array_equal(c0, 0.0)


def test_precise_sqrt2_is_ddpm_posterior():
    t, tn = 0.7, 0.4
    b, c = S.pair_coefficients("precise", t, tn, eta=np.sqrt(2.0))
    snr = lambda u: (1 - u) ** 2 / u**2
    assert (b / tn) ** 2 == pytest.approx(snr(t) / snr(tn), rel=1e-12)


def test_ode_transition_is_euler():
    x = jnp.array([[0.3, -1.2]])
    v = jnp.array([[1.5, 0.25]])
    mu, std = S.transition(x, v, 0.6, 0.45, 0.45, 0.0)
    np.testing.assert_allclose(mu, x - 0.15 * v, atol=1e-6)
    assert float(std) == pytest.approx(S.STD_FLOOR)


def test_flow_grpo_mean_matches_em_formula():
    t, tn, a = 0.6, 0.5, 0.7
    b, c = S.pair_coefficients("flow_grpo", t, tn, a)
    x = jnp.array([[0.4, -0.3, 1.1]])
    v = jnp.array([[0.2, 0.9, -0.5]])
    mu, std = S.transition(x, v, t, tn, float(b), float(c))
    g2, h = a**2 * t / (1 - t), t - tn
    score = -(x + (1 - t) * v) / t
    np.testing.assert_allclose(mu, x - h * v + 0.5 * g2 * h * score, atol=1e-6)
    assert float(std) == pytest.approx(np.sqrt(g2 * h), rel=1e-6)


def test_logprob_is_mean_of_scipy_density():
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((5, 7)).astype(np.float32)
    x = mu + 0.3 * rng.standard_normal((5, 7)).astype(np.float32)
    lp = S.gauss_logprob(jnp.asarray(x), jnp.asarray(mu), jnp.float32(0.3))
    ref = stats.norm.logpdf(x, loc=mu, scale=0.3).mean(-1)
    np.testing.assert_allclose(np.asarray(lp), ref, atol=1e-5)


def test_logprob_finite_at_floor():
    x = jnp.zeros((2, 3))
    lp = S.gauss_logprob(x, x, jnp.maximum(0.0, S.STD_FLOOR))
    assert np.all(np.isfinite(np.asarray(lp)))


def test_precise_half_steps_compose_exactly_float64():
    t, tm, tn, x0, x = 0.83, 0.5, 0.21, 0.37, 1.9
    with jax.enable_x64(True):
        def step(xv, a, b_):
            bb, cc = S.pair_coefficients("precise", a, b_, 1.5)
            v = (xv - x0) / a  # posterior mean frozen at x0
            mu, std = S.transition(jnp.float64(xv), v, a, b_, float(bb), float(cc))
            return mu, std
        mu1, sd1 = step(x, t, tn)
        m_half, sd_half = step(x, t, tm)
        m2, sd2 = step(m_half, tm, tn)
        slope = step(m_half + 1.0, tm, tn)[0] - m2  # the step is affine in x
        var2 = slope**2 * sd_half**2 + sd2**2
        assert abs(float(mu1) - float(m2)) < 1e-12
        assert abs(float(sd1) ** 2 - float(var2)) < 1e-12
    assert not jax.config.jax_enable_x64


def test_bad_input_errors():
    with pytest.raises(UserError, match="unknown sampler"):
        S.step_coefficients("ddim", shifted_grid(4))
    with pytest.raises(UserError, match="eta"):
        S.step_coefficients("precise", shifted_grid(4), eta=-0.1)


def test_mixgrpo_window_and_trained_steps():
    g = shifted_grid(10)
    b, c = S.step_coefficients("mixgrpo", g, window_start=3)
    b_fg, c_fg = S.step_coefficients("flow_grpo", g)
    inside = np.arange(10)
    inside = (inside >= 3) & (inside < 7)
    np.testing.assert_allclose(c[inside], c_fg[inside])
    assert np.all(c[~inside] == 0) and np.all(b[~inside] == g[1:][~inside])
    assert S.trained_mask("mixgrpo", 10, 3).sum() == 4
    assert S.trained_mask("precise", 10).tolist() == [True] * 9 + [False]
    starts = [S.mixgrpo_window_start(i, 100, 10) for i in range(100)]
    assert starts[0] == 0 and starts[10] == 1 and starts[59] == 5 and starts[60] == 0
