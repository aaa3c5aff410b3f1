"""Goal-conditioned Craftax (full game, K = 512) on the installed `craftax` package (imported lazily).

Observation: our one-hot re-encoding of Craftax-Symbolic's view, D = 9160 binary features.
- Map, 9 x 11 cells x 84 channels (as the symbolic renderer): 37 block kinds, 5 item kinds, 40 mob
  channels (5 classes melee/passive/ranged/mob projectile/player projectile x 8 type ids), then
  "lit" and "dark". Blocks, items and mobs of a dark cell are zeroed, as in the renderer, so goals
  about dark cells are not achieved (the agent cannot see them).
- Flat one-hot fields: wood, stone, coal, iron, torches, arrows counts 0..99 (6 x 100); diamond,
  sapphire, ruby, sapling counts 0..9 (clipped); books 0..2; 6 potions 0..9; pickaxe 0..4, sword 0..4,
  bow 0..1; 4 armour slots 0..2; sword / bow enchantment 0..2; 4 armour enchantments 0..2; health,
  food, drink, energy, mana 0..9; direction; light level in 10 bins; sleeping; resting; dungeon level
  0..8; dexterity / strength / intelligence 0..5; 2 learned spells.
  The authors' flat part is 1321 features of their own layout (not available to us); the goals do not
  depend on it.

Goal listing (in this order, 512): 10 items (wood, stone, coal, iron, diamond, sapphire, ruby, sapling,
torches, arrows) x count exactly 1..9 (90); wood, stone, coal, iron, torches, arrows x 18 bins 10-14 ...
95-99 (108); 33 blocks (all but INVALID, WOOD, DARKNESS, GRAVEL) adjacent left/right/up/down (132);
29 mob and projectile types adjacent x 4 (116); 4 item kinds (torch, ladder down, ladder up, blocked
ladder down) adjacent x 4 (16); pickaxe 1..4, sword 1..4 (8); bow (1); armour slot x iron/diamond (8);
sword, bow and 4 armour enchantments x fire/ice (12); dungeon level 0..8 (9); dexterity, strength,
intelligence 2..5 (12).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from .craftax_env import CraftaxGoalsBase, GoalListing, goal_env
from .env import GoalEnv

VIEW = (9, 11)
CENTRE = (4, 5)
N_BLOCKS, N_ITEMS, N_MOB_CH = 37, 5, 40
MAP_CH = N_BLOCKS + N_ITEMS + N_MOB_CH + 2
BIG_ITEMS = ("wood", "stone", "coal", "iron", "torches", "arrows")  # counts 0..99
SMALL_ITEMS = ("diamond", "sapphire", "ruby", "sapling")  # counts 0..9 (clipped)
COUNT_ITEMS = ("wood", "stone", "coal", "iron", "diamond", "sapphire", "ruby", "sapling", "torches", "arrows")
BLOCK_NAMES = ("invalid", "out_of_bounds", "grass", "water", "stone", "tree", "wood", "path", "coal", "iron",
               "diamond", "crafting_table", "furnace", "sand", "lava", "plant", "ripe_plant", "wall", "darkness",
               "wall_moss", "stalagmite", "sapphire", "ruby", "chest", "fountain", "fire_grass", "ice_grass",
               "gravel", "fire_tree", "ice_shrub", "enchantment_table_fire", "enchantment_table_ice",
               "necromancer", "grave", "grave2", "grave3", "necromancer_vulnerable")
GOAL_BLOCKS = tuple(b for b, n in enumerate(BLOCK_NAMES) if n not in ("invalid", "wood", "darkness", "gravel"))
ITEM_NAMES = ("torch", "ladder_down", "ladder_up", "ladder_down_blocked")  # ItemType 1..4
# (class, type id, name) of every mob or projectile the game spawns: classes as the renderer orders them.
MOB_CLASSES = ("melee_mobs", "passive_mobs", "ranged_mobs", "mob_projectiles", "player_projectiles")
MOB_TYPES = (
    [(0, t, n) for t, n in enumerate(("zombie", "gnome_warrior", "orc_soldier", "lizard", "knight", "troll",
                                      "pigman", "frost_troll"))]
    + [(1, t, n) for t, n in enumerate(("cow", "bat", "snail"))]
    + [(2, t, n) for t, n in enumerate(("skeleton", "gnome_archer", "orc_mage", "kobold", "knight_archer",
                                        "deep_thing", "fire_elemental", "ice_elemental"))]
    # Ranged mobs shoot arrow, dagger, fireball, arrow2, slimeball, fireball2, iceball2 (never iceball);
    # the player shoots arrow2 (bow), fireball and iceball (spells).
    + [(3, t, f"{n} (mob projectile)") for t, n in ((0, "arrow"), (1, "dagger"), (2, "fireball"), (4, "arrow2"),
                                                    (5, "slimeball"), (6, "fireball2"), (7, "iceball2"))]
    + [(4, t, f"{n} (player projectile)") for t, n in ((4, "arrow2"), (2, "fireball"), (3, "iceball"))]
)
DIRS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
BINS = tuple((10 + 5 * i, 14 + 5 * i) for i in range(18))

FIELDS = (("map", VIEW + (MAP_CH,)), ("big_counts", (6, 100)), ("small_counts", (4, 10)), ("books", (3,)),
          ("potions", (6, 10)), ("pickaxe", (5,)), ("sword", (5,)), ("bow", (2,)), ("armour", (4, 3)),
          ("sword_ench", (3,)), ("bow_ench", (3,)), ("armour_ench", (4, 3)), ("intrinsics", (5, 10)),
          ("direction", (4,)), ("light", (10,)), ("sleeping", (2,)), ("resting", (2,)), ("level", (9,)),
          ("attributes", (3, 6)), ("spells", (2, 2)))
_SIZES = [int(np.prod(s)) for _, s in FIELDS]
OFFSETS = dict(zip([n for n, _ in FIELDS], np.cumsum([0] + _SIZES[:-1]).tolist()))
OBS_DIM = int(sum(_SIZES))  # 9160


def _index(field: str, *idx: int) -> int:
    return OFFSETS[field] + int(np.ravel_multi_index(idx, dict(FIELDS)[field]))


def _count_bit(item: str, n: int) -> int:
    if item in BIG_ITEMS:
        return _index("big_counts", BIG_ITEMS.index(item), n)
    return _index("small_counts", SMALL_ITEMS.index(item), n)


def goal_listing() -> tuple[np.ndarray, list[str]]:
    """The 512 Craftax goals as a (512, 9160) 0/1 mask matrix and their names (module docstring order)."""
    listing = GoalListing(OBS_DIM)
    add = listing.add

    def cell(d, ch):
        dr, dc = DIRS[d]
        return _index("map", CENTRE[0] + dr, CENTRE[1] + dc, ch)

    for item in COUNT_ITEMS:
        for n in range(1, 10):
            add(f"{item} = {n}", [_count_bit(item, n)])
    for item in BIG_ITEMS:
        for lo, hi in BINS:
            add(f"{item} in {lo}-{hi}", [_count_bit(item, n) for n in range(lo, hi + 1)])
    for b in GOAL_BLOCKS:
        for d in DIRS:
            add(f"{BLOCK_NAMES[b]} {d}", [cell(d, b)])
    for c, t, name in MOB_TYPES:
        for d in DIRS:
            add(f"{name} {d}", [cell(d, N_BLOCKS + N_ITEMS + 8 * c + t)])
    for i, name in enumerate(ITEM_NAMES):
        for d in DIRS:
            add(f"{name} {d}", [cell(d, N_BLOCKS + 1 + i)])
    for tool in ("pickaxe", "sword"):
        for tier in range(1, 5):
            add(f"{tool} tier {tier}", [_index(tool, tier)])
    add("has bow", [_index("bow", 1)])
    for slot in range(4):
        for v, kind in ((1, "iron"), (2, "diamond")):
            add(f"armour slot {slot} {kind}", [_index("armour", slot, v)])
    for v, kind in ((1, "fire"), (2, "ice")):
        add(f"sword enchantment {kind}", [_index("sword_ench", v)])
    for v, kind in ((1, "fire"), (2, "ice")):
        add(f"bow enchantment {kind}", [_index("bow_ench", v)])
    for slot in range(4):
        for v, kind in ((1, "fire"), (2, "ice")):
            add(f"armour slot {slot} enchantment {kind}", [_index("armour_ench", slot, v)])
    for lvl in range(9):
        add(f"dungeon level {lvl}", [_index("level", lvl)])
    for a, attr in enumerate(("dexterity", "strength", "intelligence")):
        for v in range(2, 6):
            add(f"{attr} = {v}", [_index("attributes", a, v)])
    return listing.result()


def _view(grid, corner, pad_value):
    pad = max(VIEW) + 2
    return jax.lax.dynamic_slice(jnp.pad(grid, pad, constant_values=pad_value), corner + pad, VIEW)


def onehot_features(state) -> jax.Array:
    """Craftax state -> flat one-hot features (9160,) float32 (module docstring layout)."""
    lvl = state.player_level
    corner = state.player_position - jnp.array(CENTRE)
    blocks = jax.nn.one_hot(_view(state.map[lvl], corner, 1), N_BLOCKS)  # 1: OUT_OF_BOUNDS
    items = jax.nn.one_hot(_view(state.item_map[lvl], corner, 0), N_ITEMS)
    lit = _view(state.light_map[lvl], corner, 0.0) > 0.05
    mobs = jnp.zeros(VIEW + (N_MOB_CH,))
    for c, cls in enumerate(MOB_CLASSES):
        m = jax.tree.map(lambda x: x[lvl], getattr(state, cls))
        local = m.position - state.player_position + jnp.array(CENTRE)
        on = m.mask & jnp.all((local >= 0) & (local < jnp.array(VIEW)), axis=-1)
        loc = jnp.clip(local, 0, jnp.array(VIEW) - 1)
        # Off-screen entries scatter 0 into a clipped cell; max keeps what other entries put there.
        mobs = mobs.at[loc[:, 0], loc[:, 1], 8 * c + m.type_id].max(on.astype(jnp.float32))
    seen = jnp.concatenate([blocks, items, mobs], -1) * lit[..., None]
    light2 = jnp.stack([lit, ~lit], -1).astype(jnp.float32)
    inv = state.inventory
    oh = jax.nn.one_hot

    def clip_oh(x, n):
        return oh(jnp.clip(jnp.asarray(x).astype(jnp.int32), 0, n - 1), n)

    big = jnp.stack([getattr(inv, f) for f in BIG_ITEMS])
    small = jnp.stack([getattr(inv, f) for f in SMALL_ITEMS])
    intr = jnp.stack([state.player_health, state.player_food, state.player_drink, state.player_energy,
                      state.player_mana])
    attrs = jnp.stack([state.player_dexterity, state.player_strength, state.player_intelligence])
    light_bin = jnp.clip(jnp.floor(state.light_level * 10), 0, 9)
    parts = [jnp.concatenate([seen, light2], -1), clip_oh(big, 100), clip_oh(small, 10), clip_oh(inv.books, 3),
             clip_oh(inv.potions, 10), clip_oh(inv.pickaxe, 5), clip_oh(inv.sword, 5), clip_oh(inv.bow, 2),
             clip_oh(inv.armour, 3), clip_oh(state.sword_enchantment, 3), clip_oh(state.bow_enchantment, 3),
             clip_oh(state.armour_enchantments, 3), clip_oh(jnp.floor(intr), 10),
             clip_oh(jnp.asarray(state.player_direction) - 1, 4), clip_oh(light_bin, 10),
             clip_oh(state.is_sleeping, 2), clip_oh(state.is_resting, 2), clip_oh(lvl, 9), clip_oh(attrs, 6),
             clip_oh(state.learned_spells, 2)]
    return jnp.concatenate([p.reshape(-1) for p in parts]).astype(jnp.float32)


def direct_goal_predicates(state) -> jax.Array:
    """Every goal of `goal_listing` evaluated on the state itself (no features, no masks): (512,) bool.

    Written over the state's own arrays (map, item map, light map, mob lists, inventory) so that it is
    an independent check of `onehot_features` + the mask matrix.
    """
    inv = state.inventory
    lvl = state.player_level
    out = []
    for item in COUNT_ITEMS:
        cnt = getattr(inv, item)
        cnt = cnt if item in BIG_ITEMS else jnp.minimum(cnt, 9)  # small counts are clipped at 9
        out.append(cnt == jnp.arange(1, 10))
    lo, hi = np.array(BINS).T
    for item in BIG_ITEMS:
        cnt = jnp.minimum(getattr(inv, item), 99)
        out.append((cnt >= lo) & (cnt <= hi))
    h, w = state.map.shape[1:]
    offs = jnp.array(list(DIRS.values()))  # (4, 2)
    cells = state.player_position + offs
    inside = jnp.all((cells >= 0) & (cells < jnp.array([h, w])), -1)
    rc = jnp.clip(cells, 0, jnp.array([h - 1, w - 1]))
    visible = inside & (state.light_map[lvl][rc[:, 0], rc[:, 1]] > 0.05)  # (4,)
    blocks = state.map[lvl][rc[:, 0], rc[:, 1]]
    out.append((jnp.array(GOAL_BLOCKS)[:, None] == blocks[None]) & visible)  # (33, 4): block-major
    for c, t, _ in MOB_TYPES:
        m = getattr(state, MOB_CLASSES[c])
        here = jnp.all(m.position[lvl][:, None, :] == cells[None], -1)  # (mobs, 4)
        out.append(visible & jnp.any((m.mask[lvl] & (m.type_id[lvl] == t))[:, None] & here, 0))
    items = state.item_map[lvl][rc[:, 0], rc[:, 1]]
    out.append((jnp.arange(1, 1 + len(ITEM_NAMES))[:, None] == items[None]) & visible)
    tiers = jnp.arange(1, 5)
    out += [inv.pickaxe == tiers, inv.sword == tiers, inv.bow == 1]
    out.append(inv.armour[:, None] == jnp.array([1, 2]))
    out += [state.sword_enchantment == jnp.array([1, 2]), state.bow_enchantment == jnp.array([1, 2])]
    out.append(state.armour_enchantments[:, None] == jnp.array([1, 2]))
    out.append(lvl == jnp.arange(9))
    attrs = jnp.stack([state.player_dexterity, state.player_strength, state.player_intelligence])
    out.append(attrs[:, None] == jnp.arange(2, 6))
    return jnp.concatenate([jnp.asarray(x, bool).reshape(-1) for x in out])


class CraftaxGoals(CraftaxGoalsBase):
    """Full Craftax (43 actions, D = 9160)."""

    obs_dim = OBS_DIM
    n_actions = 43

    def _make_inner(self):
        from craftax.craftax.envs.craftax_symbolic_env import CraftaxSymbolicEnvNoAutoReset

        return CraftaxSymbolicEnvNoAutoReset()

    def _generate(self, key, params):
        from craftax.craftax.world_gen.world_gen import generate_world

        return generate_world(key, params, self.inner.static_env_params)

    def _advance(self, key, inner, action, params):
        from craftax.craftax.game_logic import craftax_step, is_game_over

        s, reward = craftax_step(key, inner, action, params, self.inner.static_env_params)
        return s, reward, is_game_over(s, params, self.inner.static_env_params)

    def _features(self, inner) -> jax.Array:
        return onehot_features(inner)


def make_craftax(num_goals: int | None = None) -> GoalEnv:
    """Goal-conditioned Craftax with the first `num_goals` of the 512 goals (all when None)."""
    masks, names = goal_listing()
    return goal_env(CraftaxGoals(), masks, names, num_goals, "craftax")
