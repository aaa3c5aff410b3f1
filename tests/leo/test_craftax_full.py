"""Goal-conditioned Craftax (K = 512): listing, one-hot features, matmul oracle vs direct predicates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

pytest.importorskip("craftax")

from quietrl.core.errors import UserError  # noqa: E402
from quietrl.leo.craftax_full import (MOB_TYPES, OBS_DIM, direct_goal_predicates, goal_listing,  # noqa: E402
                                      make_craftax, onehot_features)


def test_listing_has_512_goals_in_the_spec_groups():
    masks, names = goal_listing()
    assert masks.shape == (512, OBS_DIM) and len(set(names)) == 512
    assert len(MOB_TYPES) == 29
    assert names[0] == "wood = 1" and names[90] == "wood in 10-14" and names[197] == "arrows in 95-99"
    assert names[198] == "out_of_bounds left" and names[-1] == "intelligence = 5"
    assert (masks.sum(1) >= 1).all() and (masks[90:198].sum(1) == 5).all()  # bins are unions of 5 counts


def test_num_goals_is_checked_against_the_set():
    assert make_craftax(512).num_goals == 512
    with pytest.raises(UserError, match="holds 512 goals"):
        make_craftax(513)


@struct.dataclass
class _Inventory:
    wood: jax.Array
    stone: jax.Array
    coal: jax.Array
    iron: jax.Array
    torches: jax.Array
    arrows: jax.Array
    diamond: jax.Array
    sapphire: jax.Array
    ruby: jax.Array
    sapling: jax.Array
    books: jax.Array
    potions: jax.Array
    pickaxe: jax.Array
    sword: jax.Array
    bow: jax.Array
    armour: jax.Array


@struct.dataclass
class _Mobs:
    position: jax.Array
    mask: jax.Array
    type_id: jax.Array


@struct.dataclass
class _State:
    """The fields of craftax's EnvState that the features and predicates read (same names and shapes)."""

    map: jax.Array
    item_map: jax.Array
    light_map: jax.Array
    player_position: jax.Array
    player_level: jax.Array
    player_direction: jax.Array
    player_health: jax.Array
    player_food: jax.Array
    player_drink: jax.Array
    player_energy: jax.Array
    player_mana: jax.Array
    is_sleeping: jax.Array
    is_resting: jax.Array
    player_dexterity: jax.Array
    player_strength: jax.Array
    player_intelligence: jax.Array
    sword_enchantment: jax.Array
    bow_enchantment: jax.Array
    armour_enchantments: jax.Array
    learned_spells: jax.Array
    light_level: jax.Array
    inventory: _Inventory
    melee_mobs: _Mobs
    passive_mobs: _Mobs
    ranged_mobs: _Mobs
    mob_projectiles: _Mobs
    player_projectiles: _Mobs


def _random_states(seed: int, n: int):
    """n random (not game-reachable) states: random maps and light, mobs next to the player, random stats.

    Built with NumPy (no compile). Maps are 12 x 12 instead of 48 x 48 (cheaper, and the player is often
    near an edge, which exercises out-of-bounds cells in the view).
    """
    rng = np.random.default_rng(seed)

    def ri(lo, hi, shp=()):
        return jnp.asarray(rng.integers(lo, hi, (n,) + shp, dtype=np.int32))

    pos = ri(0, 12, (2,))

    def mobs(k, types):
        return _Mobs(position=pos[:, None, None, :] + ri(-1, 2, (9, k, 2)), mask=ri(0, 2, (9, k)).astype(bool),
                     type_id=ri(0, types, (9, k)))

    # Counts: half small (exact-count goals), half up to 99 (bins).
    big = {f: jnp.where(ri(0, 2) == 0, ri(0, 12), ri(0, 100)) for f in ("wood", "stone", "coal", "iron", "torches",
                                                                       "arrows")}
    inv = _Inventory(**big, **{f: ri(0, 12) for f in ("diamond", "sapphire", "ruby", "sapling")}, books=ri(0, 3),
                     potions=ri(0, 10, (6,)), pickaxe=ri(0, 5), sword=ri(0, 5), bow=ri(0, 2), armour=ri(0, 3, (4,)))
    u = lambda shp=(): jnp.asarray(rng.random((n,) + shp, dtype=np.float32))  # noqa: E731
    return _State(
        map=ri(0, 37, (9, 12, 12)), item_map=ri(0, 5, (9, 12, 12)), light_map=u((9, 12, 12)), player_position=pos,
        player_level=ri(0, 9), player_direction=ri(1, 5), player_health=u() * 9, player_food=ri(0, 10),
        player_drink=ri(0, 10), player_energy=ri(0, 10), player_mana=ri(0, 10), is_sleeping=ri(0, 2).astype(bool),
        is_resting=ri(0, 2).astype(bool), player_dexterity=ri(1, 6), player_strength=ri(1, 6),
        player_intelligence=ri(1, 6), sword_enchantment=ri(0, 3), bow_enchantment=ri(0, 3),
        armour_enchantments=ri(0, 3, (4,)), learned_spells=ri(0, 2, (2,)).astype(bool), light_level=u(),
        inventory=inv, melee_mobs=mobs(3, 8), passive_mobs=mobs(3, 3), ranged_mobs=mobs(2, 8),
        mob_projectiles=mobs(3, 8), player_projectiles=mobs(3, 8))


def test_matmul_oracle_equals_direct_predicates_on_random_states():
    st = _random_states(1, 768)
    masks, _ = goal_listing()

    @jax.jit
    def both(st):
        feats = jax.vmap(onehot_features)(st)
        return feats, (feats @ jnp.asarray(masks).T) > 0.5, jax.vmap(direct_goal_predicates)(st)

    feats, ach, direct = map(np.asarray, both(st))
    assert feats.shape == (768, OBS_DIM) and set(np.unique(feats)) <= {0.0, 1.0}
    np.testing.assert_array_equal(ach, direct)
    # The random states exercise nearly every goal (a few rare ones, e.g. one exact count, may be missed).
    assert ach.any(0).mean() > 0.9
    assert (~ach).any(0).all()  # and no goal is trivially always true


@pytest.mark.slow
def test_real_reset_and_steps_match_direct_predicates():
    genv = make_craftax()

    @jax.jit
    def run(key):
        obs, state = genv.reset_batch(key, 2)
        pool = genv.reset_batch(key, 2)
        out = [(obs, state)]
        for i in range(3):
            true_next, obs, state, _ = genv.step_batch(jax.random.fold_in(key, i), state,
                                                       jnp.array([1, 3], jnp.int32), pool)
            out.append((true_next, state))
        o = jnp.concatenate([a for a, _ in out])
        s = jax.tree.map(lambda *x: jnp.concatenate(x), *[b.inner for _, b in out])
        return genv.goals.achieved(o), jax.vmap(direct_goal_predicates)(s)

    ach, direct = run(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(ach), np.asarray(direct))
