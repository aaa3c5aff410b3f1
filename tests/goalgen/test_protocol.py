import numpy as np
import pytest

from quietrl.core.errors import UserError
from quietrl.goalgen import metrics
from quietrl.goalgen.evaluate import PairTable
from quietrl.goalgen.families import generate_families
from quietrl.goalgen.protocol import SPLITS, make_folds, run_protocol
from quietrl.goalgen.grammar import parse_pipeline

NAMES = [p.name for p in generate_families(0)]


@pytest.mark.parametrize("split", SPLITS)
def test_folds_never_leak_a_pipeline(split):
    folds = make_folds(split, NAMES + NAMES)  # duplicates = several seeds of one pipeline
    for f in folds:
        assert f.train and f.test and not set(f.train) & set(f.test)
    if split == "cv4":
        tests = [n for f in folds for n in f.test]
        assert sorted(tests) == sorted(set(NAMES))  # every pipeline tested exactly once
    elif split == "two_to_three":
        assert all(parse_pipeline(n).n_stages == 3 for n in folds[0].test)
    elif split == "single_to_multi":
        assert all(parse_pipeline(n).n_stages == 1 for n in folds[0].train)


def test_empty_split_is_a_user_error():
    with pytest.raises(UserError, match="empty test side"):
        make_folds("two_to_three", ["red_cross", "blue_plus_then_red_cross"])
    with pytest.raises(UserError, match="unknown split"):
        make_folds("random", NAMES)


def test_metrics_known_answers():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]])
    np.testing.assert_allclose(metrics.kl3(p, p), 0.0, atol=1e-9)
    assert metrics.brier(p, p).sum() == 0
    u = np.full((2, 3), 1 / 3)
    corr, counted = metrics.direction(p, u)
    assert counted.all() and corr.sum() == 0          # a uniform predictor never matches a direction
    corr, _ = metrics.direction(p, p)
    assert corr.all()
    s = metrics.summarize(p, p, np.array(["x", "y"]), n_boot=50)
    assert s["dir_acc"]["mean"] == 1.0 and s["kl3"]["mean"] == pytest.approx(0, abs=1e-9)


def test_bootstrap_groups_move_together():
    vals = np.array([0.0, 0.0, 1.0, 1.0])
    r = metrics._grouped_bootstrap(vals, np.ones(4), np.array(["a", "a", "b", "b"]), 400, 0)
    assert r["mean"] == 0.5 and r["lo"] == 0.0 and r["hi"] == 1.0


@pytest.mark.slow
def test_run_protocol_end_to_end_small():
    # Synthetic table: 8 pipelines x 6 pairs with preferences that follow trained colours.
    pls = ["red_cross", "blue_plus", "black_ring", "red_diamond_then_blue_cross",
           "blue_ring_with_red_plus_distractor", "black_cross_then_red_ring", "red_plus_then_blue_diamond",
           "blue_cross_then_black_plus_then_red_ring"]
    pairs = [(0, 19), (6, 19), (1, 22), (7, 13), (20, 23), (2, 8)]
    rows = {"pipeline": [], "family": [], "seed": [], "obj_a": [], "obj_b": [], "counts": []}
    rng = np.random.default_rng(0)
    for name in pls:
        for a, b in pairs:
            rows["pipeline"].append(name); rows["family"].append("X"); rows["seed"].append(0)
            rows["obj_a"].append(a); rows["obj_b"].append(b)
            rows["counts"].append(rng.multinomial(20, [0.5, 0.3, 0.2]))
    t = PairTable(*(np.array(rows[k], dtype=object if k in ("pipeline", "family") else None)
                    for k in ("pipeline", "family", "seed", "obj_a", "obj_b", "counts")))
    res = run_protocol(t, ("cv4", "two_to_three"), fit_steps=3, n_boot=20, few_shot_ns=(0, 2),
                       few_shot_trials=1, batch=20)
    assert res["n_fits"] == 4 * 4 + 4 + 1
    cv = res["splits"]["cv4"]
    assert len(cv["p_obs"]) == len(t)
    assert {"lpg", "lpg_memoryless", "lpg_simultaneous", "lpg_diagonal", "uniform", "dirichlet",
            "feature_count"} <= set(cv["rows"])
    assert set(res["few_shot"]) == {0, 2}
