"""Goal-conditioned Craftax-Classic: goal listing, one-hot features, matmul oracle vs direct predicates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("craftax")

from quietrl.core.errors import UserError  # noqa: E402
from quietrl.leo.craftax_env import (OBS_DIM, direct_goal_predicates, goal_listing,  # noqa: E402
                                     make_craftax_classic, onehot_features)


def test_listing_has_136_goals_over_1562_features():
    masks, names = goal_listing()
    assert masks.shape == (136, 1562) == (len(names), OBS_DIM)
    assert len(set(names)) == 136
    assert names[0] == "wood = 1" and names[53] == "sapling = 9" and names[54] == "has wood_pickaxe"
    assert names[-1] == "arrow down"
    assert set(np.unique(masks)) == {0.0, 1.0}


def test_num_goals_is_checked_against_the_set():
    assert make_craftax_classic(10).num_goals == 10
    with pytest.raises(UserError, match="holds 136 goals"):
        make_craftax_classic(137)


@pytest.fixture(scope="module")
def states():
    """A few reset worlds, then copies with edited inventories and a cow placed next to the player."""
    genv = make_craftax_classic()

    @jax.jit
    def build(key):
        _, st = genv.reset_batch(key, 3)
        s = st.inner
        inv = s.inventory.replace(wood=jnp.array([0, 3, 9]), iron=jnp.array([1, 0, 2]),
                                  stone_sword=jnp.array([0, 1, 0]))
        cows = s.cows.replace(position=s.cows.position.at[:, 0].set(s.player_position + jnp.array([0, -1])),
                              mask=s.cows.mask.at[:, 0].set(True))
        edited = s.replace(inventory=inv, cows=cows)
        both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), s, edited)
        feats = jax.vmap(onehot_features)(both)
        return feats, genv.goals.achieved(feats), jax.vmap(direct_goal_predicates)(both)

    return genv, *build(jax.random.PRNGKey(0))


def test_features_are_one_hot_per_field(states):
    _, feats, _, _ = states
    # 63 + 63 map cells, 12 inventory counts, 4 intrinsics, direction, light, sleeping: one 1 each.
    np.testing.assert_array_equal(np.asarray(feats).sum(-1), 145)


def test_matmul_oracle_equals_direct_predicates(states):
    genv, _, ach, direct = states
    ach, direct = np.asarray(ach), np.asarray(direct)
    np.testing.assert_array_equal(ach, direct)
    names = genv.goal_names
    assert ach[4, names.index("wood = 3")] and ach[5, names.index("wood = 9")]
    assert ach[3, names.index("iron = 1")] and ach[4, names.index("has stone_sword")]
    assert ach[3:, names.index("cow left")].all()
