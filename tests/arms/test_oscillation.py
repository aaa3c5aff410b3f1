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


def _ar1_curve(rng, phi=0.5, sd=0.1):
    e = np.zeros(M)
    for i in range(1, M):
        e[i] = phi * e[i - 1] + sd * rng.normal()
    return 0.5 + e


def test_ar1_null_is_calibrated_on_moderately_correlated_noise():
    """The surrogates go through the same detrending as the data: on AR(1)(0.5) curves the 5% test flags
    about 5% (the first version, AR(1) fitted to the detrended curve and not detrended, flagged ~21%)."""
    rng = np.random.default_rng(1)
    flagged = sum(detect(_ar1_curve(rng), num_surrogates=200, seed=k).flagged for k in range(40))
    assert flagged <= 5  # binomial(40, 0.05): P(X >= 6) ≈ 0.05; at 21% the expected count is 8.6


def test_phase_surrogates_cannot_test_a_peak():
    """Phase-randomised surrogates keep the curve's amplitude spectrum, so an obvious oscillation is not
    significant against them: the reason the detector uses the AR(1) null."""
    k = np.arange(M)
    rng = np.random.default_rng(0)
    x = 0.5 + 0.2 * np.sin(2 * np.pi * k / 8) + 0.05 * rng.normal(size=M)
    ar1, phase = detect(x, num_surrogates=200, null="ar1"), detect(x, num_surrogates=200, null="phase")
    assert ar1.p_value < 0.05 and ar1.threshold < 0.6 * ar1.rho
    # the phase null's surrogates reproduce the observed statistic: no margin to call anything a peak
    assert abs(phase.threshold - phase.rho) < 0.01 * phase.rho
