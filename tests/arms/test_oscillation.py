"""Oscillation detector: a noisy sinusoid is flagged, AR(1) noise and a flat curve are not."""

import numpy as np
import pytest

from quietrl.arms.oscillation import collapses_recoveries, detect
from quietrl.core.errors import UserError

M = 64


def test_noisy_sinusoid_is_flagged():
    rng = np.random.default_rng(0)
    k = np.arange(M)
    x = 0.5 + 0.2 * np.sin(2 * np.pi * k / 8) + 0.05 * rng.normal(size=M)
    r = detect(x, num_surrogates=300, seed=0)
    assert r.flagged and r.peak_period == pytest.approx(8.0) and r.p_value < 0.05


def test_ar1_noise_is_not_flagged():
    flagged = 0
    for s in range(8):
        rng = np.random.default_rng(100 + s)
        e = np.zeros(M)
        for i in range(1, M):
            e[i] = 0.8 * e[i - 1] + 0.08 * rng.normal()
        flagged += detect(0.5 + e, num_surrogates=300, seed=s).flagged
    assert flagged <= 2  # a 5% test: 8 independent series, allow chance hits


def test_small_amplitude_is_not_flagged():
    k = np.arange(M)
    x = 0.5 + 0.02 * np.sin(2 * np.pi * k / 8)
    r = detect(x, num_surrogates=100)
    assert r.amplitude < 0.1 and not r.flagged


def test_collapses_and_recoveries():
    x = np.array([0.1, 0.6, 0.7, 0.4, 0.3, 0.68, 0.8, 0.5, 0.5])
    assert collapses_recoveries(x) == (2, 1)


def test_bad_curves_are_user_errors():
    with pytest.raises(UserError, match="at least 16"):
        detect(np.zeros(5))
    with pytest.raises(UserError, match="NaN"):
        detect(np.full(20, np.nan))
