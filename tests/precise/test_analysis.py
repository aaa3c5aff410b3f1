"""Time-to-target arithmetic on hand-made curves."""
import numpy as np

from quietrl.precise import analysis


def test_smooth_trailing_mean():
    np.testing.assert_allclose(analysis.smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])


def test_time_to_target_known_answer():
    it = np.arange(0, 110, 10.0)
    base = np.minimum(it / 100, 0.5)[None].repeat(2, 0)  # plateaus at 0.5 from iteration 50
    fast = np.minimum(it / 50, 1.0)[None].repeat(2, 0)
    secs = (it / 10)[None].repeat(2, 0)
    r = analysis.time_to_target({"flow_grpo": base, "precise": fast}, {"flow_grpo": secs, "precise": secs},
                                it, ["flow_grpo"], window=1)
    assert r["r_star"] == 0.5 and r["reach_iters"]["precise"] == 30 and r["reach_iters"]["flow_grpo"] == 50
    assert abs(r["saving_iters"] - 0.7) < 1e-12 and abs(r["ratio_iters"] - 5 / 3) < 1e-12
    slow = np.zeros_like(base)
    r = analysis.time_to_target({"flow_grpo": base, "precise": slow}, {"flow_grpo": secs, "precise": secs},
                                it, ["flow_grpo"], window=1)
    assert r["reach_iters"]["precise"] is None and r["saving_iters"] is None


def test_bootstrap_intervals_contain_point():
    it = np.arange(0, 110, 10.0)
    rng = np.random.default_rng(0)
    base = np.minimum(it / 100, 0.5) + 0.01 * rng.standard_normal((5, it.size))
    fast = np.minimum(it / 50, 1.0) + 0.01 * rng.standard_normal((5, it.size))
    secs = (it / 10)[None].repeat(5, 0)
    b = analysis.bootstrap_time_to_target({"flow_grpo": base, "precise": fast},
                                          {"flow_grpo": secs, "precise": secs}, it, ["flow_grpo"], num=50)
    lo, hi, frac = b["saving_iters"]
    assert 0.4 < lo <= hi < 0.9 and frac == 1.0


def test_degenerate_target_when_no_baseline_improves():
    it = np.arange(0, 60, 10.0)
    falling = np.linspace(0, -1, it.size)[None].repeat(2, 0)
    secs = (it / 10)[None].repeat(2, 0)
    r = analysis.time_to_target({"cps": falling, "precise": falling}, {"cps": secs, "precise": secs}, it,
                                ["cps"], window=1)
    assert r["degenerate"] and r["saving_iters"] is None
