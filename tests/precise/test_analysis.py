"""Time-to-target arithmetic on hand-made curves."""
import numpy as np
import pytest

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


def _shared_offset_curves(seeds=8):
    """Curves where each seed adds the same large offset to both arms (a shared model/noise effect) and
    Precise's ramp is twice as steep: pairing by seed removes the offset from the comparison."""
    it = np.arange(0, 210, 10.0)
    rng = np.random.default_rng(1)
    offset = 0.3 * rng.standard_normal((seeds, 1))
    base = offset + np.minimum(it / 200, 0.5)
    fast = offset + np.minimum(it / 100, 1.0)
    secs = (it / 10)[None].repeat(seeds, 0)
    return it, {"flow_grpo": base, "precise": fast}, {"flow_grpo": secs, "precise": secs}


def test_paired_bootstrap_is_tighter_under_shared_seed_effects():
    it, curves, times = _shared_offset_curves()
    unpaired = analysis.bootstrap_time_to_target(curves, times, it, ["flow_grpo"], num=200, window=1)
    paired = analysis.bootstrap_time_to_target(curves, times, it, ["flow_grpo"], num=200, window=1, paired=True)
    lo_u, hi_u, _ = unpaired["ratio_iters"]
    lo_p, hi_p, frac = paired["ratio_iters"]
    # paired: every resample moves both arms by the same offset, so the ratio is exactly 2 each time
    assert frac == 1.0 and abs(lo_p - 2.0) < 1e-9 and abs(hi_p - 2.0) < 1e-9
    assert hi_u - lo_u > 0.5
    with pytest.raises(ValueError, match="same number of seeds"):
        analysis.bootstrap_time_to_target({"flow_grpo": curves["flow_grpo"], "precise": curves["precise"][:3]},
                                          times, it, ["flow_grpo"], num=5, paired=True)


def test_paired_reach_difference_known_answer():
    it = np.arange(0, 110, 10.0)
    base = np.minimum(it / 100, 0.5)[None].repeat(3, 0)  # reaches R* = 0.5 at 50 in every seed
    fast = np.stack([np.minimum(it / 50, 1.0), np.minimum(it / 50, 1.0), np.zeros_like(it)])  # 30, 30, never
    d = analysis.paired_reach_difference({"flow_grpo": base, "precise": fast}, it, ["flow_grpo"], window=1,
                                         num=200)
    assert d["t_method"] == [30.0, 30.0, 110.0]  # never reached: T + one evaluation interval
    assert d["t_best"] == [50.0, 50.0, 50.0] and d["method_first"] == 2 and d["seeds"] == 3
    assert abs(d["mean_diff"] - np.mean(np.array(d["t_best"]) - np.array(d["t_method"]))) < 1e-12
    assert d["ci"][0] <= d["mean_diff"] <= d["ci"][1]
