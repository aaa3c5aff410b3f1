"""Exact equilibrium checker for tiny games: pure Nash sets under each shaping, mixed NE of matrix games.

Grid games (the swap game, a crossing) are deterministic Markov games played with open-loop plans: each
agent's pure strategy is an action sequence of length H (5^H per agent). Against a fixed open-loop opponent a
closed-loop deviation produces a single trajectory, so checking sequences finds every profitable deviation;
reactive (closed-loop) equilibria are not enumerated [spec §7]. Profiles are simulated with the env's own
collision function (:func:`quietrl.arms.env.resolve_moves`) and shaped rewards see the env's observation
(:func:`quietrl.arms.env.observe`), so the checker and the MAPF env cannot drift apart.

Payoff tensors have shape (S_1, ..., S_n, n). A profile is a pure NE when every player's payoff is within
``tol`` of its best-response maximum (float sums of shaped rewards break exact ties, hence a tolerance).
Mixed equilibria of 2-player matrix games come from ``nashpy`` (support enumeration), imported lazily.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from quietrl.arms.env import MOVES, observe, resolve_moves
from quietrl.arms.maps import bfs_distance
from quietrl.core.errors import UserError

TOL = 1e-9


# --------------------------------------------------------------------------------------------------------
# Games
# --------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class GridGame:
    """A tiny deterministic MAPF game: grid (rows, cols) with obstacle cells, starts/goals per agent."""

    name: str
    rows: int
    cols: int
    starts: tuple[tuple[int, int], ...]
    goals: tuple[tuple[int, int], ...]
    horizon: int
    gamma: float
    obstacles: tuple[tuple[int, int], ...] = ()

    @property
    def num_agents(self) -> int:
        return len(self.starts)

    def obstacle_grid(self) -> np.ndarray:
        g = np.zeros((self.rows, self.cols), dtype=bool)
        for r, c in self.obstacles:
            g[r, c] = True
        return g

    def num_plans(self) -> int:
        return len(MOVES) ** self.horizon


def swap_game(horizon: int = 4, gamma: float = 0.9) -> GridGame:
    """2x3 grid, A (0,0)->(0,2), B (0,2)->(0,0): the agents must pass each other using the second row."""
    return GridGame("swap", 2, 3, ((0, 0), (0, 2)), ((0, 2), (0, 0)), horizon, gamma)


def crossing_game(horizon: int = 3, gamma: float = 0.9) -> GridGame:
    """3x3 four-way crossing (corners blocked), 3 agents crossing the centre from W, N and E."""
    return GridGame("crossing", 3, 3, ((1, 0), (0, 1), (1, 2)), ((1, 2), (2, 1), (1, 0)), horizon, gamma,
                    obstacles=((0, 0), (0, 2), (2, 0), (2, 2)))


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """Simulated open-loop profiles of a grid game (P profiles, H steps, n agents).

    pos (P, H+1, n, 2) positions before each step and at the end; alive (P, H+1, n) not yet arrived;
    arrival (P, n) step count 1..H of arrival or 0 (never).
    """

    pos: np.ndarray
    alive: np.ndarray
    arrival: np.ndarray


def all_plans(num_actions: int, horizon: int) -> np.ndarray:
    """Every action sequence, (num_actions^horizon, horizon) int32, lexicographic."""
    return np.array(list(itertools.product(range(num_actions), repeat=horizon)), dtype=np.int32)


def simulate(game: GridGame, plans: np.ndarray, rule: str = "block_occupied",
             batch: int = 1 << 19) -> Trajectories:
    """Roll out joint plans (P, n, H) with the env's collision rule; see :class:`Trajectories`."""
    obstacles = jnp.asarray(game.obstacle_grid())
    starts = jnp.asarray(np.array(game.starts, np.int32))
    goals = jnp.asarray(np.array(game.goals, np.int32))

    @jax.jit
    def run(p):
        def one(plan):  # plan (n, H)
            def body(carry, a):
                pos, alive = carry
                new = resolve_moves(pos, a, alive, obstacles, rule)
                alive_next = alive & ~(new == goals).all(-1)
                return (new, alive_next), (new, alive_next)

            init = (starts, jnp.ones((game.num_agents,), bool))
            _, (ps, al) = jax.lax.scan(body, init, plan.T)
            return jnp.concatenate([starts[None], ps]), jnp.concatenate([init[1][None], al])

        return jax.vmap(one)(p)

    # equal-size batches (the last one padded) so the simulator compiles once
    total = len(plans)
    batch = min(batch, total)
    pos_out, alive_out = [], []
    for i in range(0, total, batch):
        chunk = plans[i:i + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
        ps, al = run(jnp.asarray(chunk))
        pos_out.append(np.asarray(ps)[:batch - pad])
        alive_out.append(np.asarray(al)[:batch - pad])
    pos = np.concatenate(pos_out)
    alive = np.concatenate(alive_out)
    newly = alive[:, :-1] & ~alive[:, 1:]  # (P, H, n)
    steps = np.arange(1, game.horizon + 1)[None, :, None]
    arrival = (newly * steps).sum(1)
    return Trajectories(pos=pos, alive=alive, arrival=arrival.astype(np.int32))


def joint_profiles(game: GridGame) -> np.ndarray:
    """All joint open-loop profiles (S^n, n, H) in C order of the payoff tensor's player axes."""
    plans = all_plans(len(MOVES), game.horizon)
    S, n = len(plans), game.num_agents
    idx = np.stack(np.meshgrid(*[np.arange(S)] * n, indexing="ij"), -1).reshape(-1, n)
    return plans[idx]


# --------------------------------------------------------------------------------------------------------
# Payoffs under shapings
# --------------------------------------------------------------------------------------------------------
def _disc(game: GridGame) -> np.ndarray:
    return game.gamma ** np.arange(game.horizon, dtype=np.float64)


def sparse_returns(game: GridGame, traj: Trajectories) -> np.ndarray:
    """G_i = Σ_t γ^t R_{i,t} with R = 1 at the arrival step (S0); (P, n) float64."""
    return np.where(traj.arrival > 0, game.gamma ** (traj.arrival - 1.0), 0.0)


def _distances(game: GridGame, traj: Trajectories) -> np.ndarray:
    """BFS distance of each agent to its own goal at every time, (P, H+1, n)."""
    obst = game.obstacle_grid()
    out = np.empty(traj.alive.shape, dtype=np.float64)
    for i, g in enumerate(game.goals):
        d = bfs_distance(obst, g).astype(np.float64)
        out[..., i] = d[traj.pos[..., i, 0], traj.pos[..., i, 1]]
    return out


def pbrs_returns(game: GridGame, traj: Trajectories, zero_at_timeout: bool = True) -> np.ndarray:
    """G + Σ_t γ^t (γΦ(s_{t+1}) − Φ(s_t)) with Φ_i = −d_BFS/d_max, 0 after arrival (and at timeout if asked)."""
    d = _distances(game, traj)
    dmax = max(1.0, float(d[np.isfinite(d)].max()))
    phi = np.where(traj.alive, -d / dmax, 0.0)
    if zero_at_timeout:
        phi[:, -1] = 0.0
    f = game.gamma * phi[:, 1:] - phi[:, :-1]
    return sparse_returns(game, traj) + (f * _disc(game)[None, :, None]).sum(1)


def bonus_returns(game: GridGame, traj: Trajectories, bonus: float = 0.3) -> np.ndarray:
    """G + Σ_t γ^t · bonus · [agent alive and its BFS distance drops at step t]."""
    d = _distances(game, traj)
    step = traj.alive[:, :-1] & (d[:, 1:] < d[:, :-1])
    return sparse_returns(game, traj) + (bonus * step * _disc(game)[None, :, None]).sum(1)


def penalty_returns(game: GridGame, traj: Trajectories, coef: float = 0.1) -> np.ndarray:
    """G − Σ_t γ^t · coef · d_BFS(s_{t+1}) over the steps the agent is alive."""
    d = _distances(game, traj)
    pen = traj.alive[:, :-1] * d[:, 1:] * coef
    return sparse_returns(game, traj) - (pen * _disc(game)[None, :, None]).sum(1)


def post_step_observations(game: GridGame, traj: Trajectories, radius: int = 2):
    """Env observations o'_{i,t} after every step, deduplicated.

    Returns (obs_unique (K, D) float32, inverse (P, H, n) int index into obs_unique, mask (P, H, n) = agent
    alive before the step). Joint states repeat massively across profiles, so observations are computed once
    per distinct (t, positions, alive flags).
    """
    P, H1, n = traj.alive.shape
    H = H1 - 1
    cells = game.rows * game.cols
    pos_after = traj.pos[:, 1:]  # (P, H, n, 2)
    alive_after = traj.alive[:, 1:]
    key = np.broadcast_to(np.arange(1, H + 1)[None, :], (P, H)).astype(np.int64)
    for i in range(n):
        key = key * cells + pos_after[..., i, 0] * game.cols + pos_after[..., i, 1]
        key = key * 2 + alive_after[..., i]
    uniq, first, inverse = np.unique(key.ravel(), return_index=True, return_inverse=True)
    flat_pos = pos_after.reshape(-1, n, 2)[first]
    flat_alive = alive_after.reshape(-1, n)[first]
    flat_t = np.broadcast_to(np.arange(1, H + 1)[None, :], (P, H)).ravel()[first]
    obst = jnp.asarray(game.obstacle_grid())
    goals = jnp.asarray(np.array(game.goals, np.int32))
    obs = jax.jit(jax.vmap(lambda p, a, t: observe(obst, p, goals, a, t, H, radius)))(
        jnp.asarray(flat_pos), jnp.asarray(flat_alive), jnp.asarray(flat_t))
    obs = np.asarray(obs).reshape(len(uniq) * n, -1)  # row = state * n + agent
    inv = inverse.reshape(P, H)[..., None] * n + np.arange(n)[None, None, :]
    return obs, inv, traj.alive[:, :-1]


LEARNED_MODES = ("replace", "add", "potential")


def initial_observations(game: GridGame, radius: int = 2) -> np.ndarray:
    """Env observations o_{i,0} (n, D) at the start (t = 0, every agent alive): the same for every profile."""
    obst = jnp.asarray(game.obstacle_grid())
    starts = jnp.asarray(np.array(game.starts, np.int32))
    goals = jnp.asarray(np.array(game.goals, np.int32))
    alive = jnp.ones((game.num_agents,), bool)
    return np.asarray(observe(obst, starts, goals, alive, jnp.int32(0), game.horizon, radius))


def learned_returns(game: GridGame, traj: Trajectories, reward_fn: Callable[[np.ndarray], np.ndarray],
                    mode: str = "potential", beta: float = 1.0, radius: int = 2,
                    observations: tuple | None = None) -> np.ndarray:
    """Payoffs (P, n) under the learned network f_θ = ``reward_fn`` (obs (K, D) -> (K,)) used three ways.

    - ``replace``: Ĝ_i = Σ_t γ^t m_t f(o'_{i,t}) (f as a per-step reward, the sparse reward dropped);
    - ``add``: G_i + β Ĝ_i (f as a per-step reward added to the sparse one);
    - ``potential``: G_i + β Σ_t γ^t m_t (γ Φ_{i,t+1} − Φ_{i,t}) with Φ_{i,t} = f(o_{i,t}) while agent i is in the
      game and 0 once it has arrived or the horizon is reached. The sum telescopes to −β f(o_{i,0}), the same
      for every profile, so every best-response set and the Nash set are unchanged whatever θ is.

    ``observations``: :func:`post_step_observations` of ``traj`` if already computed (they are the costly part).
    """
    if mode not in LEARNED_MODES:
        raise UserError(f"unknown learned-reward mode {mode!r}; choose one of {', '.join(LEARNED_MODES)}")
    obs, inv, mask = observations if observations is not None else post_step_observations(game, traj, radius)
    r = np.asarray(reward_fn(obs), dtype=np.float64)
    disc = _disc(game)[None, :, None]
    if mode == "potential":
        phi0 = np.asarray(reward_fn(initial_observations(game, radius)), dtype=np.float64)  # (n,)
        phi_next = np.where(traj.alive[:, 1:], r[inv], 0.0)  # 0 after arrival
        phi_next[:, -1] = 0.0  # and at the horizon (timeout is terminal)
        phi = np.concatenate([np.broadcast_to(phi0, (len(phi_next), 1, game.num_agents)), phi_next[:, :-1]], 1)
        f = np.where(mask, game.gamma * phi_next - phi, 0.0)
        return sparse_returns(game, traj) + beta * (f * disc).sum(1)
    g_hat = (r[inv] * mask * disc).sum(1)
    return g_hat if mode == "replace" else sparse_returns(game, traj) + beta * g_hat


def ranking_violations(game: GridGame, ref: np.ndarray, new: np.ndarray, tol: float = TOL) -> dict[str, float]:
    """Condition (C2) per opponent profile, 2-player games: how often the shaped payoff orders a player's own
    strategies differently from the sparse one, within each fixed opponent strategy.

    ref, new: payoff tensors (S, S, 2). Returns, per player, the fraction of opponent strategies where the
    order is fully kept on strictly ordered pairs and the mean strict-pair accuracy, estimated on 256 random
    opponents x 4096 random own-strategy pairs (seed 0).
    """
    if ref.shape[-1] != 2:
        return {}
    rng = np.random.default_rng(0)
    S = ref.shape[0]
    out = {}
    for i in range(2):
        u_ref = np.moveaxis(ref[..., i], i, -1)  # (opponent, own)
        u_new = np.moveaxis(new[..., i], i, -1)
        opp = rng.integers(0, S, 256)
        a, b = rng.integers(0, S, (2, 4096))
        dr = u_ref[opp][:, a] - u_ref[opp][:, b]
        dn = u_new[opp][:, a] - u_new[opp][:, b]
        strict = np.abs(dr) > tol
        ok = ~strict | (np.sign(dr) == np.sign(dn)) & (np.abs(dn) > tol)
        out[f"c2_kept_p{i}"] = float(ok.all(1).mean())
        out[f"strict_pair_acc_p{i}"] = float(ok[strict].mean()) if strict.any() else 1.0
    return out


def rank_oracle(payoffs: np.ndarray) -> np.ndarray:
    """Each player's payoff replaced by its dense rank among its own strategies, per opponent profile.

    A strictly increasing per-opponent-profile transform: the reconstructed theorem's condition (C2) holds by
    construction, so the pure Nash set must be reproduced exactly (the checker's positive control).
    """
    from scipy.stats import rankdata

    out = np.empty_like(payoffs)
    for i in range(payoffs.shape[-1]):
        u = np.round(payoffs[..., i], 12)  # equal up to float noise counts as a tie
        out[..., i] = rankdata(u, method="dense", axis=i)
    return out


def payoff_tensor(game: GridGame, returns: np.ndarray) -> np.ndarray:
    """Reshape per-profile returns (S^n, n) to the payoff tensor (S, ..., S, n)."""
    S = game.num_plans()
    return returns.reshape((S,) * game.num_agents + (game.num_agents,))


# --------------------------------------------------------------------------------------------------------
# Nash sets
# --------------------------------------------------------------------------------------------------------
def best_response_mask(payoffs: np.ndarray, player: int, tol: float = TOL) -> np.ndarray:
    """Bool tensor (S_1..S_n): player's own strategy is a best response to the others'."""
    u = payoffs[..., player]
    best = u.max(axis=player, keepdims=True)
    return u >= best - tol * np.maximum(1.0, np.abs(best))


def pure_nash(payoffs: np.ndarray, tol: float = TOL) -> np.ndarray:
    """Bool tensor (S_1..S_n) of pure Nash equilibria of a payoff tensor (S_1, ..., S_n, n)."""
    n = payoffs.shape[-1]
    if payoffs.ndim != n + 1:
        raise UserError(f"payoff tensor of shape {payoffs.shape} is not (S_1, ..., S_n, n) with n = {n}")
    ne = np.ones(payoffs.shape[:-1], dtype=bool)
    for i in range(n):
        ne &= best_response_mask(payoffs, i, tol)
    return ne


def best_response_agreement(ref: np.ndarray, new: np.ndarray, tol: float = TOL) -> dict[str, float]:
    """2-player games: fraction of opponent strategies where the shaped BR set equals / is inside the sparse one."""
    if ref.shape[-1] != 2:
        return {}
    out = {}
    for i in range(2):
        a = best_response_mask(ref, i, tol)
        b = best_response_mask(new, i, tol)
        axis = i  # the player's own axis; compare sets for each opponent strategy
        eq = (a == b).all(axis=axis)
        sub = (~b | a).all(axis=axis)
        out[f"br_equal_p{i}"] = float(eq.mean())
        out[f"br_subset_p{i}"] = float(sub.mean())
    return out


def compare_nash(ref_payoffs: np.ndarray, new_payoffs: np.ndarray, outcomes: np.ndarray | None = None,
                 welfare_payoffs: np.ndarray | None = None, tol: float = TOL) -> dict:
    """Compare the pure NE set of ``new`` to the reference (sparse) one.

    outcomes: per-profile outcome class (e.g. arrival steps) as an int array of the tensor's profile shape
    (S_1..S_n) or (S_1..S_n, k); welfare uses ``welfare_payoffs`` (default: the reference payoffs).
    Returns |NE|, Jaccard, sound (new ⊆ ref), identical, new profiles, outcome classes of both and whether
    every reference class survives (complete), and the sparse welfare min/mean/max over the new set.
    """
    ne_ref, ne_new = pure_nash(ref_payoffs, tol), pure_nash(new_payoffs, tol)
    inter = int((ne_ref & ne_new).sum())
    union = int((ne_ref | ne_new).sum())
    res = {
        "num_ne": int(ne_new.sum()),
        "num_ne_ref": int(ne_ref.sum()),
        "jaccard": inter / union if union else 1.0,
        "identical": bool((ne_ref == ne_new).all()),
        "sound": bool((~ne_new | ne_ref).all()),
        "new_profiles": int((ne_new & ~ne_ref).sum()),
    }
    if outcomes is not None:
        oc = outcomes.reshape(ne_ref.shape + (-1,))
        cls_ref = {tuple(map(int, x)) for x in oc[ne_ref]}
        cls_new = {tuple(map(int, x)) for x in oc[ne_new]}
        res["classes_ref"] = sorted(cls_ref)
        res["classes"] = sorted(cls_new)
        res["complete"] = cls_ref <= cls_new
        res["new_classes"] = sorted(cls_new - cls_ref)
    w = (welfare_payoffs if welfare_payoffs is not None else ref_payoffs).sum(-1)[ne_new]
    res["welfare"] = (float(w.min()), float(w.mean()), float(w.max())) if w.size else (None, None, None)
    res.update(best_response_agreement(ref_payoffs, new_payoffs, tol))
    return res


# --------------------------------------------------------------------------------------------------------
# Normal-form games
# --------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MatrixGame:
    """A 2-player normal-form game: row payoffs A (m, k), column payoffs B (m, k)."""

    name: str
    A: np.ndarray
    B: np.ndarray

    def payoffs(self) -> np.ndarray:
        return np.stack([self.A, self.B], -1).astype(np.float64)


def classic_games() -> dict[str, MatrixGame]:
    """Prisoner's dilemma (C, D), Battle of the Sexes, its squared payoffs, matching pennies, coordination."""
    bos_a = np.array([[2.0, 0.0], [0.0, 1.0]])
    bos_b = np.array([[1.0, 0.0], [0.0, 2.0]])
    return {
        "prisoners_dilemma": MatrixGame("prisoners_dilemma", np.array([[3.0, 0.0], [5.0, 1.0]]),
                                        np.array([[3.0, 5.0], [0.0, 1.0]])),
        "battle_of_sexes": MatrixGame("battle_of_sexes", bos_a, bos_b),
        "battle_of_sexes_squared": MatrixGame("battle_of_sexes_squared", bos_a ** 2, bos_b ** 2),
        "matching_pennies": MatrixGame("matching_pennies", np.array([[1.0, -1.0], [-1.0, 1.0]]),
                                       np.array([[-1.0, 1.0], [1.0, -1.0]])),
        "coordination": MatrixGame("coordination", np.eye(2) * 1.0, np.eye(2) * 1.0),
    }


def pure_nash_matrix(game: MatrixGame, tol: float = TOL) -> list[tuple[int, int]]:
    """Pure NE of a matrix game as (row, col) index pairs."""
    return [tuple(map(int, x)) for x in np.argwhere(pure_nash(game.payoffs(), tol))]


def support_enumeration(A: np.ndarray, B: np.ndarray, tol: float = 1e-9) -> list[tuple[np.ndarray, np.ndarray]]:
    """Our own support enumeration for nondegenerate 2-player games (equal-size supports), the cross-check
    for (and fallback without) nashpy: for each support pair solve the indifference equations."""
    m, k = A.shape
    out = []
    for size in range(1, min(m, k) + 1):
        for I in itertools.combinations(range(m), size):
            for J in itertools.combinations(range(k), size):
                # column player's mix y on J makes the row player indifferent on I (and vice versa)
                y = _indifferent(A[np.ix_(I, J)], size)
                x = _indifferent(B[np.ix_(I, J)].T, size)
                if x is None or y is None:
                    continue
                xf, yf = np.zeros(m), np.zeros(k)
                xf[list(I)], yf[list(J)] = x, y
                u_row, u_col = A @ yf, xf @ B
                if u_row.max() <= u_row[list(I)].min() + tol and u_col.max() <= u_col[list(J)].min() + tol:
                    out.append((xf, yf))
    return out


def _indifferent(M: np.ndarray, size: int) -> np.ndarray | None:
    """Probability vector p (size,) with M @ p constant, or None if none / not a distribution."""
    lhs = np.zeros((size + 1, size + 1))
    lhs[:size, :size] = M
    lhs[:size, size] = -1.0
    lhs[size, :size] = 1.0
    rhs = np.zeros(size + 1)
    rhs[size] = 1.0
    try:
        sol = np.linalg.solve(lhs, rhs)
    except np.linalg.LinAlgError:
        return None
    p = sol[:size]
    return p if (p >= -1e-12).all() else None


def mixed_nash(game: MatrixGame, backend: str = "nashpy") -> list[tuple[np.ndarray, np.ndarray]]:
    """All equilibria (pure and mixed) by support enumeration: ``nashpy`` (imported lazily; our own
    :func:`support_enumeration` when nashpy is absent or ``backend="own"``)."""
    try:
        if backend == "own":
            raise ImportError
        import nashpy
    except ImportError:
        return support_enumeration(game.A.astype(float), game.B.astype(float))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nashpy warns on degenerate games; we report what it finds
        eqs = list(nashpy.Game(game.A, game.B).support_enumeration())
    return [(np.asarray(x, float), np.asarray(y, float)) for x, y in eqs]


def strictly_mixed(eqs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The equilibria in which some player randomises."""
    return [(x, y) for x, y in eqs if (x > 1e-9).sum() > 1 or (y > 1e-9).sum() > 1]


# --------------------------------------------------------------------------------------------------------
# The swap-game study
# --------------------------------------------------------------------------------------------------------
def grid_game_table(game: GridGame, rule: str = "follow",
                    learned: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
                    radius: int = 2, learned_rule: str | None = None) -> list[dict]:
    """Rows comparing pure NE sets under sparse, PBRS (zeroed / not at timeout), bonus, penalty and learned r̂.

    ``learned`` maps a label to a reward function on env observations (K, D) -> (K,); its rows are computed
    under ``learned_rule`` (default: the env's default collision rule, ``block_occupied``) against the sparse
    set under that same rule.
    """
    traj = simulate(game, joint_profiles(game), rule)
    outcomes = traj.arrival.reshape((game.num_plans(),) * game.num_agents + (game.num_agents,))
    ref = payoff_tensor(game, sparse_returns(game, traj))
    shapings = {
        "sparse": sparse_returns(game, traj),
        "pbrs (Φ=0 at timeout)": pbrs_returns(game, traj, True),
        "pbrs (Φ not zeroed)": pbrs_returns(game, traj, False),
        "bonus +0.3": bonus_returns(game, traj, 0.3),
        "penalty -0.1·dist": penalty_returns(game, traj, 0.1),
    }
    rows = []
    for name, ret in shapings.items():
        rows.append({"game": game.name, "rule": rule, "payoff": name,
                     **compare_nash(ref, payoff_tensor(game, ret), outcomes)})
    rows.append({"game": game.name, "rule": rule, "payoff": "rank oracle (C2 by construction)",
                 **compare_nash(ref, rank_oracle(ref), outcomes)})
    if learned:
        lrule = learned_rule or "block_occupied"
        ltraj = traj if lrule == rule else simulate(game, joint_profiles(game), lrule)
        lref = payoff_tensor(game, sparse_returns(game, ltraj))
        lout = ltraj.arrival.reshape(outcomes.shape)
        rows.append({"game": game.name, "rule": lrule, "payoff": "sparse", **compare_nash(lref, lref, lout)})
        lobs = post_step_observations(game, ltraj, radius)
        for name, fn in learned.items():
            for mode in LEARNED_MODES:
                new = payoff_tensor(game, learned_returns(game, ltraj, fn, mode, radius=radius, observations=lobs))
                rows.append({"game": game.name, "rule": lrule, "payoff": f"{name} ({mode})",
                             **compare_nash(lref, new, lout), **ranking_violations(game, lref, new)})
    return rows
