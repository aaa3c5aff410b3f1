import numpy as np
import pytest

from quietrl.core.errors import UserError
from quietrl.prefrl.regret import fit_slope, local_slope, slope_summary, window_means


def test_slopes_of_power_laws():
    n = np.arange(1, 2001)
    assert fit_slope(3.0 * n) == pytest.approx(1.0)
    assert fit_slope(np.sqrt(n)) == pytest.approx(0.5)
    assert local_slope(n**0.7) == pytest.approx(0.7, abs=1e-3)


def test_bootstrap_ci_covers_seed_mean_and_is_tight_for_linear():
    rng = np.random.default_rng(0)
    n = np.arange(1, 1001)
    C = np.stack([np.cumsum(4.8 + 0.5 * rng.standard_normal(1000)) for _ in range(5)])
    s = slope_summary(C)
    assert s.ci[0] <= s.mean <= s.ci[1]
    assert abs(s.mean - 1.0) < 0.02 and s.ci[1] - s.ci[0] < 0.02
    S = np.stack([n**0.4 * (1 + 0.1 * k) for k in range(5)])
    assert slope_summary(S).mean == pytest.approx(0.4)


def test_windows_and_errors():
    assert window_means(np.arange(10.0), 5).tolist() == [0.5, 2.5, 4.5, 6.5, 8.5]
    with pytest.raises(UserError, match="at least 5"):
        fit_slope(np.ones(3))
