"""S1/S2/S3 consistency statistics: known values and the convergence claim."""
import numpy as np
import pytest

from quietrl.precise import consistency as C
from quietrl.precise.schedules import shifted_grid


@pytest.mark.parametrize("name", ["precise", "cps", "ode"])
def test_s1_unit_ratio_clean_last(name):
    for k in (6, 10, 20):
        nu, (b, c) = C.noise_ratios(name, shifted_grid(k))
        np.testing.assert_allclose(nu, 1.0, atol=1e-12)
        assert b == 0.0 and c == 0.0


@pytest.mark.parametrize("name", ["flow_grpo", "dance_grpo"])
def test_s1_excess_noise_for_em(name):
    nu, (b, c) = C.noise_ratios(name, shifted_grid(10))
    assert np.all(nu > 1.0) and c > 0.1 and b < 0


def test_s2_precise_exact_at_every_k():
    for k in (6, 10, 20, 50, 1000):
        rho_k, rho_sde, ratio = C.retention("precise", shifted_grid(k))
        assert ratio == pytest.approx(1.0, abs=1e-9)
        rho_k, rho_sde, ratio = C.retention("dance_precise", shifted_grid(k))
        assert ratio == pytest.approx(1.0, abs=1e-9)


def test_s2_known_values_em_and_cps():
    rk, rs, _ = C.retention("flow_grpo", shifted_grid(10))
    assert (rk, rs) == (pytest.approx(0.434, abs=1e-3), pytest.approx(0.584, abs=1e-3))
    rk, rs, _ = C.retention("dance_grpo", shifted_grid(10))
    assert (rk, rs) == (pytest.approx(0.884, abs=1e-3), pytest.approx(0.887, abs=1e-3))
    cps = [C.retention("cps", shifted_grid(k))[0] for k in (6, 10, 20)]
    np.testing.assert_allclose(cps, [0.206, 0.042, 0.001], atol=1e-3)
    assert np.isnan(C.retention("cps", shifted_grid(10))[2])
    # EM approaches the SDE as K grows
    assert abs(C.retention("flow_grpo", shifted_grid(1000))[2] - 1) < 0.01


def test_posterior_mean_single_point_is_exact():
    import jax.numpy as jnp
    m = jnp.array([[0.5, -0.2]])
    x = jnp.array([[1.0, 2.0], [-0.3, 0.1]])
    out = C.posterior_mean(x, 0.4, m, 0.0, jnp.zeros(1))
    np.testing.assert_allclose(np.asarray(out), np.broadcast_to(m, (2, 2)), atol=1e-6)


@pytest.fixture(scope="module")
def s3_rows():
    mix = C.Mixture.two_modes_1d(0.3)
    rows = {}
    for name in ("precise", "cps"):
        for k in (10, 200):
            rows[name, k] = C.s3_row(name, shifted_grid(k), mix, n=20_000, seed=0, mid_points=5)
    return rows


def test_s3_precise_converges_cps_does_not(s3_rows):
    assert s3_rows["precise", 200]["term_w1"] < 0.5 * s3_rows["precise", 10]["term_w1"]
    assert s3_rows["cps", 200]["spread_ratio"] < 0.9
    assert abs(s3_rows["precise", 200]["spread_ratio"] - 1) < 0.05
    assert s3_rows["precise", 200]["weight_err"] < 0.02
