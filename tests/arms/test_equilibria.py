"""Exact equilibrium checker: known answers on the swap game and classic matrix games."""

import numpy as np
import pytest

from quietrl.arms.equilibria import (classic_games, compare_nash, grid_game_table, mixed_nash, pure_nash,
                                     pure_nash_matrix, strictly_mixed, swap_game)
from quietrl.core.errors import UserError


def _random_reward_fn(seed: int):
    import jax
    import jax.numpy as jnp

    from quietrl.arms.networks import RewardNet

    net = RewardNet(32)
    params = net.init(jax.random.PRNGKey(seed), jnp.zeros((1, 3 * 25 + 4)))
    apply = jax.jit(net.apply)
    return lambda o: np.asarray(apply(params, jnp.asarray(o)))


@pytest.fixture(scope="module", params=["follow", "block_occupied"])
def swap_rows(request):
    """Rows under one collision rule; learned rows use that same rule. The ranking-trained r̂ (a short fit on
    the env's observations of 1024 random profiles) only under the env's default rule, to keep the run short."""
    game = swap_game(horizon=4, gamma=0.9)
    learned = {"random r̂": _random_reward_fn(3)}
    if request.param == "block_occupied":
        from quietrl.arms.experiment import train_swap_reward

        learned["trained r̂"] = train_swap_reward(game, request.param, num_profiles=1024, steps=150, seed=0)[0]
    rows = grid_game_table(game, rule=request.param, learned=learned, learned_rule=request.param)
    return request.param, {r["payoff"]: r for r in rows}


def test_swap_game_sparse_nash_count(swap_rows):
    rule, rows = swap_rows
    assert rows["sparse"]["num_ne"] == {"follow": 16_036, "block_occupied": 44_200}[rule]


def test_pbrs_zeroed_at_timeout_keeps_the_set(swap_rows):
    _, rows = swap_rows
    r = rows["pbrs (Φ=0 at timeout)"]
    assert r["identical"] and r["jaccard"] == 1.0 and r["complete"]


def test_pbrs_not_zeroed_changes_the_set(swap_rows):
    _, rows = swap_rows
    r = rows["pbrs (Φ not zeroed)"]
    assert not r["identical"] and r["num_ne"] < r["num_ne_ref"]


def test_rank_oracle_reproduces_the_set(swap_rows):
    _, rows = swap_rows
    assert rows["rank oracle (C2 by construction)"]["identical"]


def test_naive_bonus_adds_equilibria(swap_rows):
    _, rows = swap_rows
    r = rows["bonus +0.3"]
    assert r["new_profiles"] >= 1 and not r["sound"]
    assert (4, 4) in r["new_classes"]  # both arrive at the last step: not an equilibrium outcome of the sparse game


def test_learned_potential_keeps_the_nash_set(swap_rows):
    """The central claim, by construction: r̂_θ as a potential (zero at terminals) leaves the pure Nash set
    identical (16,036 / 44,200 profiles) for an untrained and for a ranking-trained network."""
    rule, rows = swap_rows
    names = ["random r̂ (potential)"] + (["trained r̂ (potential)"] if rule == "block_occupied" else [])
    for name in names:
        r = rows[name]
        assert r["identical"] and r["num_ne"] == r["num_ne_ref"] and r["complete"], name
        assert r["c2_kept_p0"] == 1.0 and r["c2_kept_p1"] == 1.0  # the order within every opponent kept


def test_learned_reward_form_is_not_invariant(swap_rows):
    """The first slice's form (r̂ as a per-step reward, replace or add) changes the set on this game."""
    rule, rows = swap_rows
    changed = [not rows[f"random r̂ ({m})"]["identical"] for m in ("replace", "add")]
    if rule == "block_occupied":
        changed += [not rows[f"trained r̂ ({m})"]["identical"] for m in ("replace", "add")]
    assert all(changed)


def test_swap_outcome_classes_follow(swap_rows):
    rule, rows = swap_rows
    if rule == "follow":
        assert rows["sparse"]["classes"] == [(0, 0), (2, 4), (3, 4), (4, 2), (4, 3)]


def test_prisoners_dilemma_unique_defection():
    g = classic_games()["prisoners_dilemma"]
    assert pure_nash_matrix(g) == [(1, 1)]
    eqs = mixed_nash(g)
    assert len(eqs) == 1 and np.allclose(eqs[0][0], [0, 1]) and np.allclose(eqs[0][1], [0, 1])


def test_battle_of_sexes_two_pure_and_one_mixed():
    g = classic_games()["battle_of_sexes"]
    assert pure_nash_matrix(g) == [(0, 0), (1, 1)]
    (x, y), = strictly_mixed(mixed_nash(g))
    assert np.allclose(x, [2 / 3, 1 / 3]) and np.allclose(y, [1 / 3, 2 / 3])


def test_squared_battle_of_sexes_moves_the_mixed_equilibrium():
    g = classic_games()["battle_of_sexes_squared"]
    assert pure_nash_matrix(g) == [(0, 0), (1, 1)]  # order-preserving: pure NE kept
    (x, y), = strictly_mixed(mixed_nash(g))
    assert np.allclose(x, [0.8, 0.2]) and np.allclose(y, [0.2, 0.8])


def test_matching_pennies_only_the_mixed_equilibrium():
    g = classic_games()["matching_pennies"]
    assert pure_nash_matrix(g) == []
    eqs = mixed_nash(g)
    assert len(eqs) == 1 and np.allclose(eqs[0][0], [0.5, 0.5]) and np.allclose(eqs[0][1], [0.5, 0.5])


@pytest.mark.parametrize("name", ["prisoners_dilemma", "battle_of_sexes", "battle_of_sexes_squared",
                                  "matching_pennies"])
def test_own_support_enumeration_agrees_with_nashpy(name):
    nashpy = pytest.importorskip("nashpy")
    g = classic_games()[name]
    own = sorted((tuple(x.round(6)), tuple(y.round(6))) for x, y in mixed_nash(g, backend="own"))
    ref = sorted((tuple(np.round(x, 6)), tuple(np.round(y, 6))) for x, y in nashpy.Game(g.A, g.B).support_enumeration())
    assert own == ref


def test_tolerance_keeps_float_ties():
    u = np.zeros((2, 2, 2))
    u[0, :, 0] = 0.1 + 0.2
    u[1, :, 0] = 0.3  # differs from 0.1 + 0.2 by one ulp
    assert pure_nash(u)[:, 0].all()
    assert pure_nash(u, tol=0.0)[:, 0].sum() == 1


def test_compare_detects_subset_and_superset():
    ref = classic_games()["coordination"].payoffs()
    refined = ref.copy()
    refined[1, 1] = [0.5, 0.5]  # still an equilibrium
    res = compare_nash(ref, refined)
    assert res["identical"] and res["num_ne"] == 2
    flat = np.zeros_like(ref)  # every profile becomes an equilibrium
    res = compare_nash(ref, flat)
    assert res["num_ne"] == 4 and res["new_profiles"] == 2 and not res["sound"]


def test_unknown_learned_mode_is_a_user_error():
    from quietrl.arms.equilibria import learned_returns, simulate

    game = swap_game(horizon=2)
    traj = simulate(game, np.zeros((1, 2, 2), np.int32))
    with pytest.raises(UserError, match="unknown learned-reward mode"):
        learned_returns(game, traj, lambda o: np.zeros(len(o)), mode="multiply")
