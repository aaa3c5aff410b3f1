"""Update-time comparison: one LEO update vs one explicit all-goals relabelling update, plus a cost model.

Both updates are jitted scans over the same batch with the same trunk; compile time is excluded and
each time is the median of `repeats` calls, LEO's calls interleaved with the baseline's so that both
see the same background load. Wall and process-CPU times are both reported: on a shared machine the
CPU-time ratio is the steadier one. The relabelling baseline trains on B (1 + K) pairs whose
indices are decoded per minibatch (never materialised); its network sees `[observation, goal input]`.
LEO's update takes max_a Q_old(s')[k, a] as input, as in training where the acting pass of the next
step provides it; `leo_target_pass_s` additionally times that forward pass inside the update (the
conservative variant, reported alongside).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.core.config import require

from .leo import leo_targets, leo_update
from .networks import TRUNK_PRESETS, LEONetwork, UVFANetwork
from .pqn import commanded_samples, num_relabel_minibatches, pqn_update, relabel_all_update

# One-hot field sizes of a Craftax-Classic symbolic observation: 7x9 cells x (17 blocks, 5 mob slots),
# 12 inventory counts x 10, 4 intrinsics x 10, direction 4, light 10, sleeping 2 -> D = 1562.
CLASSIC_FIELDS: tuple[int, ...] = (17,) * 63 + (5,) * 63 + (10,) * 16 + (4, 10, 2)


@dataclass(frozen=True)
class SpeedupSetup:
    """What is timed. Defaults: the issue's Craftax-Classic-sized setup with the paper's trunk."""

    fields: tuple[int, ...] = CLASSIC_FIELDS  # one-hot groups making up the observation
    num_actions: int = 17
    trunk: str = "1024x4"
    batch: int = 512
    minibatch: int = 256
    epochs: int = 1
    gamma: float = 0.99
    goal_input: str = "mask"  # baseline's goal input: the goal's K x D mask row ("mask")

    def __post_init__(self):
        require(self.trunk in TRUNK_PRESETS, "trunk", f"choose one of {', '.join(TRUNK_PRESETS)}")
        require(self.batch % self.minibatch == 0, "minibatch", "must divide batch")
        require(self.goal_input == "mask", "goal_input", "only 'mask' is supported")

    @property
    def obs_dim(self) -> int:
        return int(sum(self.fields))


def synthetic_onehot(key, fields: tuple[int, ...], n: int) -> jax.Array:
    """n random observations with exactly one 1 per field: (n, sum(fields)) float32."""
    keys = jax.random.split(key, len(fields))
    parts = [jax.nn.one_hot(jax.random.randint(k, (n,), 0, f), f) for k, f in zip(keys, fields)]
    return jnp.concatenate(parts, -1)


def synthetic_masks(key, d: int, k: int, bits: int = 4) -> jax.Array:
    """K synthetic goal masks over D features, `bits` ones each: (K, D) float32."""
    idx = jax.random.randint(key, (k, bits), 0, d)
    return jax.nn.one_hot(idx, d).max(1)


def flop_model(setup: SpeedupSetup, k: int, obs_dim: int | None = None, goal_dim: int | None = None,
               target_pass: bool = False) -> float:
    """Cost-model ratio relabel/LEO from multiply-adds per sample (spec section 8, our timing's terms).

    LEO: E B 3 (c_trunk + c_head(K)) for forward + backward (+ B (c_trunk + c_head) with the target pass).
    Relabelling: E B (1 + K) 4 c_uvfa (forward, backward x2, s' re-pass) per pair.
    """
    d = obs_dim if obs_dim is not None else setup.obs_dim
    g = goal_dim if goal_dim is not None else d
    h = TRUNK_PRESETS[setup.trunk]
    body = sum(a * b for a, b in zip(h[:-1], h[1:]))
    c_trunk = d * h[0] + body
    c_head = h[-1] * k * setup.num_actions
    c_uvfa = (d + g) * h[0] + body + h[-1] * setup.num_actions
    e = setup.epochs
    leo = (3 * e + (1 if target_pass else 0)) * (c_trunk + c_head)
    rel = e * (1 + k) * 4 * c_uvfa
    return rel / leo


def _call_time(fn, args) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call, waited for."""
    t, c = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t, time.process_time() - c


def _median_time(fn, args, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of `repeats` calls; the first (compiling) call is excluded."""
    jax.block_until_ready(fn(*args))
    times = np.array([_call_time(fn, args) for _ in range(repeats)])
    return float(np.median(times[:, 0])), float(np.median(times[:, 1]))


def _paired_times(slow, slow_args, fast, fast_args, repeats: int, fast_per_slow: int = 3):
    """Median (wall, CPU) seconds of `slow` and `fast`, measured interleaved.

    Each repeat times `slow` once, then `fast` `fast_per_slow` times, so both see the same background
    load on a shared machine (the ratio is the claim). Compile calls are excluded.
    Returns ((slow_wall, slow_cpu), (fast_wall, fast_cpu)).
    """
    jax.block_until_ready(slow(*slow_args))
    jax.block_until_ready(fast(*fast_args))
    ts, tf = [], []
    for _ in range(repeats):
        ts.append(_call_time(slow, slow_args))
        tf += [_call_time(fast, fast_args) for _ in range(fast_per_slow)]
    ts, tf = np.array(ts), np.array(tf)
    return (float(np.median(ts[:, 0])), float(np.median(ts[:, 1]))), \
        (float(np.median(tf[:, 0])), float(np.median(tf[:, 1])))


def _fit_line(ns: list[int], ts: list[float], n: int) -> float:
    """Least-squares line through (ns, ts), evaluated at n."""
    slope, intercept = np.polyfit(np.asarray(ns, float), np.asarray(ts, float), 1)
    return float(intercept + slope * n)


def time_updates(setup: SpeedupSetup, k: int, repeats: int = 3, seed: int = 0,
                 masks: jax.Array | None = None, with_pqn: bool = True,
                 with_target_pass: bool = True,
                 relabel_minibatches: tuple[int, ...] | None = None) -> dict[str, float]:
    """Median seconds of one LEO, one all-goals relabelling and one commanded PQN update at K goals.

    masks: optional (K, D) goal masks (synthetic ones otherwise). Returns leo_s, relabel_s, pqn_s,
    ratio, per_pair_over_per_transition (the baseline's time per (transition, goal) over commanded
    PQN's time per transition), model (the cost model's ratio) and the pair/minibatch counts.

    relabel_minibatches: when the full baseline update is too long to time (a 1024x4 trunk at K = 512 on
    2 shared CPU cores takes tens of minutes per call), time it cut to each of these numbers of
    minibatches per epoch (>= 2 distinct values) and extrapolate with a least-squares line to the full
    count; the update is one `lax.scan` of identical minibatch steps, so its time is linear in the count.
    `relabel_extrapolated` says which was done and `relabel_points` holds (minibatches, wall s, CPU s).
    """
    key = jax.random.PRNGKey(seed)
    k_obs, k_next, k_act, k_goal, k_done, k_mask, k_net, k_upd = jax.random.split(key, 8)
    b, d, a = setup.batch, setup.obs_dim, setup.num_actions
    hidden = TRUNK_PRESETS[setup.trunk]
    obs = synthetic_onehot(k_obs, setup.fields, b)
    next_obs = synthetic_onehot(k_next, setup.fields, b)
    masks = synthetic_masks(k_mask, d, k) if masks is None else masks
    ach_next = (next_obs @ masks.T) > 0.5
    action = jax.random.randint(k_act, (b,), 0, a)
    goal = jax.random.randint(k_goal, (b,), 0, k)
    done = jax.random.uniform(k_done, (b,)) < 0.01
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.radam(2e-4))

    leo_net = LEONetwork(k, a, hidden)
    leo_params = leo_net.init(k_net, obs[:1])
    leo_opt = tx.init(leo_params)

    maxq_stored = leo_net.apply(leo_params, next_obs).max(-1)  # what the rollout's acting pass stores

    @jax.jit
    def leo_step(params, opt_state, key, maxq_next):
        y = leo_targets(maxq_next, ach_next, done, setup.gamma)
        return leo_update(params, opt_state, tx, leo_net.apply, obs, action, y, key, setup.minibatch,
                          setup.epochs)

    @jax.jit
    def leo_step_with_pass(params, opt_state, key):
        return leo_step(params, opt_state, key, leo_net.apply(params, next_obs).max(-1))

    uvfa = UVFANetwork(a, hidden)
    u_params = uvfa.init(k_net, obs[:1], masks[:1])
    u_opt = tx.init(u_params)

    def relabel_step_cut(max_minibatches):
        @jax.jit
        def relabel_step(params, opt_state, key):
            return relabel_all_update(params, opt_state, tx, uvfa.apply, masks, obs, action, goal, ach_next,
                                      done, next_obs, key, setup.minibatch, setup.epochs, setup.gamma,
                                      max_minibatches=max_minibatches)
        return relabel_step

    @jax.jit
    def pqn_step(params, opt_state, key):
        samples = commanded_samples(obs, action, goal, ach_next, done, next_obs)
        return pqn_update(params, opt_state, tx, uvfa.apply, masks, samples, key, setup.minibatch,
                          setup.epochs, setup.gamma)

    nmb = num_relabel_minibatches(b, k, setup.minibatch)
    cuts = sorted({n for n in (relabel_minibatches or ()) if 1 <= n < nmb})
    extrapolate = relabel_minibatches is not None and len(cuts) >= 2
    require(relabel_minibatches is None or extrapolate or max(relabel_minibatches) >= nmb, "relabel_minibatches",
            f"needs >= 2 distinct counts in [1, {nmb}) to extrapolate")
    leo_args = (leo_params, leo_opt, k_upd, maxq_stored)
    points, leo_times = [], []
    for n in (cuts if extrapolate else [None]):
        # Interleaved, so that the short LEO calls and the long relabelling calls see the same load.
        (rw, rc), (lw, lc) = _paired_times(relabel_step_cut(n), (u_params, u_opt, k_upd), leo_step, leo_args,
                                           repeats)
        points.append((n if n is not None else nmb, rw, rc))
        leo_times.append((lw, lc))
    if extrapolate:
        ns = [p[0] for p in points]
        # The full update runs more minibatches than any cut, so it costs at least the dearest cut: a fitted
        # value below that (a noisy fit on a loaded machine) is replaced by that lower bound, which can only
        # understate the speed-up, and flagged in `relabel_lower_bound`.
        rel_s, rel_cpu = _fit_line(ns, [p[1] for p in points], nmb), _fit_line(ns, [p[2] for p in points], nmb)
        floor_s, floor_cpu = max(p[1] for p in points), max(p[2] for p in points)
        lower_bound = rel_s < floor_s or rel_cpu < floor_cpu
        rel_s, rel_cpu = max(rel_s, floor_s), max(rel_cpu, floor_cpu)
    else:
        lower_bound = False
        rel_s, rel_cpu = points[0][1], points[0][2]
    leo_s, leo_cpu = float(np.median([t[0] for t in leo_times])), float(np.median([t[1] for t in leo_times]))
    out = dict(k=k, leo_s=leo_s, relabel_s=rel_s, ratio=rel_s / leo_s, leo_cpu_s=leo_cpu, relabel_cpu_s=rel_cpu,
               ratio_cpu=rel_cpu / leo_cpu, model=flop_model(setup, k), pairs=b * (k + 1),
               relabel_minibatches=setup.epochs * nmb, relabel_extrapolated=extrapolate,
               relabel_lower_bound=lower_bound,
               relabel_points=[list(p) for p in points])
    if with_target_pass:
        leo_pass_s, _ = _median_time(leo_step_with_pass, (leo_params, leo_opt, k_upd), max(repeats, 9))
        out.update(leo_target_pass_s=leo_pass_s, ratio_with_target_pass=rel_s / leo_pass_s)
    if with_pqn:
        # Commanded PQN over the same B transitions: the same minibatch steps as relabelling, 1/(1 + K) as many.
        (pqn_s, pqn_cpu), _ = _paired_times(pqn_step, (u_params, u_opt, k_upd), leo_step,
                                            (leo_params, leo_opt, k_upd, maxq_stored), max(repeats, 5), 1)
        out.update(pqn_s=pqn_s, per_pair_over_per_transition=(rel_s / (b * (k + 1))) / (pqn_s / b),
                   per_pair_over_per_transition_cpu=(rel_cpu / (b * (k + 1))) / (pqn_cpu / b))
    return out


def loop_sps(cfg_leo, cfg_rel, seed: int = 0) -> dict[str, float]:
    """Full-loop env steps per second of LEO and all-goals relabelling training (second chunk, compiled).

    Both configs should differ only in `algo`; each runs two chunks and times the second.
    """
    from .train import make_train

    out = {}
    for name, cfg in (("leo", cfg_leo), ("relabel", cfg_rel)):
        tr = make_train(cfg)
        s = tr.init(jax.random.PRNGKey(seed))
        s, _ = tr.chunk(s)
        jax.block_until_ready(s)
        t = time.perf_counter()
        s, _ = tr.chunk(s)
        jax.block_until_ready(s)
        out[f"{name}_sps"] = cfg.updates_per_chunk * cfg.batch_size / (time.perf_counter() - t)
    out["sps_ratio"] = out["leo_sps"] / out["relabel_sps"]
    return out
