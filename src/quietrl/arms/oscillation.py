"""Oscillation detector for training curves (numpy).

The paper's measure is unknown; this is the spec's reconstruction (§4, H1) with one deliberate change.
x_k (k = 1..M) is a curve such as held-out success per checkpoint:
- detrend: d = x − centred moving average (window 9, shrinking at the edges);
- spectral peak statistic ρ = max_f P(f) / Σ_f P(f) over f ∈ [2/M, 0.5] of the Hann-windowed periodogram of d;
- significance against surrogates. The spec names phase-randomised surrogates, but those keep the amplitude
  spectrum of d, so their ρ is (up to the window) the observed ρ and cannot test a peak. We use a red-noise
  null instead: AR(1) series fitted to d (lag-1 autocorrelation and variance), the usual null for spectral
  peaks; ``null="phase"`` keeps the spec's surrogates for comparison;
- amplitude A = 2·std(d); **flagged iff ρ exceeds the surrogates' 95th percentile and A > 0.1**;
- collapses (a drop of ≥ 0.2 below the running maximum after it exceeded 0.5) and recoveries (back within 0.05
  of the previous maximum), and the sign-change rate of Δx (≈ 2/3 for iid noise).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quietrl.core.errors import UserError


@dataclasses.dataclass(frozen=True)
class OscillationResult:
    rho: float
    threshold: float
    p_value: float
    amplitude: float
    flagged: bool
    peak_period: float
    collapses: int
    recoveries: int
    sign_change_rate: float
    freqs: np.ndarray
    power: np.ndarray
    surrogate_band: np.ndarray  # (len(freqs),) 95th percentile of surrogate periodograms


def moving_average(x: np.ndarray, window: int = 9) -> np.ndarray:
    """Centred moving average (M,) with the window shrinking symmetrically at the edges."""
    h = window // 2
    out = np.empty_like(x, dtype=float)
    for k in range(len(x)):
        r = min(h, k, len(x) - 1 - k)
        out[k] = x[k - r:k + r + 1].mean()
    return out


def periodogram(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed periodogram of d (M,): (freqs in cycles per checkpoint, power), f ∈ [2/M, 0.5]."""
    m = len(d)
    p = np.abs(np.fft.rfft((d - d.mean()) * np.hanning(m))) ** 2
    f = np.fft.rfftfreq(m)
    keep = f >= 2.0 / m - 1e-12
    return f[keep], p[keep]


def peak_statistic(d: np.ndarray) -> float:
    """ρ = max P / Σ P over the periodogram band."""
    _, p = periodogram(d)
    return float(p.max() / max(p.sum(), 1e-300))


def ar1_surrogates(d: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """AR(1) series (num, M) with d's lag-1 autocorrelation and variance."""
    d = d - d.mean()
    var = d.var()
    phi = float(np.clip(np.dot(d[1:], d[:-1]) / max(np.dot(d, d), 1e-300), -0.99, 0.99))
    sig = np.sqrt(max(var * (1 - phi ** 2), 1e-300))
    out = np.empty((num, len(d)))
    out[:, 0] = rng.normal(0, np.sqrt(max(var, 1e-300)), num)
    eps = rng.normal(0, sig, (num, len(d)))
    for k in range(1, len(d)):
        out[:, k] = phi * out[:, k - 1] + eps[:, k]
    return out


def phase_surrogates(d: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """Phase-randomised copies (num, M): same amplitude spectrum, random phases."""
    m = len(d)
    spec = np.fft.rfft(d - d.mean())
    phases = rng.uniform(0, 2 * np.pi, (num, len(spec)))
    phases[:, 0] = 0.0
    if m % 2 == 0:
        phases[:, -1] = 0.0
    return np.fft.irfft(np.abs(spec) * np.exp(1j * phases), n=m)


def collapses_recoveries(x: np.ndarray, drop: float = 0.2, level: float = 0.5, tol: float = 0.05) -> tuple[int, int]:
    """Count collapses (x falls ≥ drop below its running max after the max exceeded ``level``) and recoveries."""
    collapses = recoveries = 0
    best = -np.inf
    down = False
    peak_at_collapse = 0.0
    for v in x:
        if not down:
            best = max(best, v)
            if best > level and v <= best - drop:
                collapses += 1
                down = True
                peak_at_collapse = best
        elif v >= peak_at_collapse - tol:
            recoveries += 1
            down = False
            best = v
    return collapses, recoveries


def detect(x, window: int = 9, num_surrogates: int = 500, amp_threshold: float = 0.1, quantile: float = 0.95,
           null: str = "ar1", seed: int = 0) -> OscillationResult:
    """Run the detector on one curve x (M,), M >= 16; see the module docstring."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) < 16:
        raise UserError(f"oscillation detector needs a 1-D curve of at least 16 checkpoints, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise UserError("oscillation detector: the curve contains NaN or inf")
    if null not in ("ar1", "phase"):
        raise UserError(f"unknown surrogate null {null!r}; choose ar1 or phase")
    d = x - moving_average(x, window)
    rng = np.random.default_rng(seed)
    surr = (ar1_surrogates if null == "ar1" else phase_surrogates)(d, num_surrogates, rng)
    rho = peak_statistic(d)
    f, p = periodogram(d)
    s_rho = np.array([peak_statistic(s) for s in surr])
    s_pow = np.array([periodogram(s)[1] for s in surr])
    thr = float(np.quantile(s_rho, quantile))
    amp = float(2 * d.std())
    dx = np.diff(x)
    sgn = np.sign(dx[dx != 0])
    scr = float((sgn[1:] != sgn[:-1]).mean()) if len(sgn) > 1 else 0.0
    col, rec = collapses_recoveries(x)
    return OscillationResult(
        rho=rho, threshold=thr, p_value=float((1 + (s_rho >= rho).sum()) / (1 + len(s_rho))), amplitude=amp,
        flagged=bool(rho > thr and amp > amp_threshold), peak_period=float(1.0 / f[np.argmax(p)]),
        collapses=col, recoveries=rec, sign_change_rate=scr, freqs=f, power=p,
        surrogate_band=np.quantile(s_pow, quantile, axis=0))
