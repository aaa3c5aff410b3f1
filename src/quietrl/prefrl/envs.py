"""Episodic MDPs with horizon H: gridded ones (exact values by backward DP) and a user-MDP interface.

A :class:`GriddedMDP` has finitely many states S (possibly a grid over a continuous set) and actions A,
stationary transitions ``P (S, A, S)`` and reward ``r (S, A)``, a start state ``s1`` and a declared reward
range. State-action pairs are indexed ``z = s * A + a``; ``features (S*A, d+1)`` holds the state
coordinates followed by the action index, the input of the state-action kernels.

Policies are deterministic Markov: ``policy (H, S)`` of action indices, so V^pi and V* are exact.

Environments (spec §6): ``bumps1d`` and ``chain`` as specified with the prototype's V*; ``bumps2d`` is our
2-D construction [derived] (same bump shapes and noise on a 31x31 grid, 5 actions, H = 10).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Protocol

import numpy as np

from quietrl.core.errors import UserError

__all__ = [
    "GriddedMDP",
    "Trajectory",
    "bumps1d",
    "bumps2d",
    "chain",
    "make_env",
    "ENV_NAMES",
    "EpisodicMDP",
    "monte_carlo_value",
    "from_arrays",
]


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """One rollout: ``states (H+1,)``, ``actions (H,)``, ``rewards (H,)`` (hidden from preference learners)."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray

    def z(self, num_actions: int) -> np.ndarray:
        """State-action indices ``(H,)`` visited, ``z = s * A + a``."""
        return self.states[:-1] * num_actions + self.actions


@dataclasses.dataclass(frozen=True, eq=False)
class GriddedMDP:
    """A finite (gridded) episodic MDP; exact planning and policy evaluation by backward DP."""

    name: str
    P: np.ndarray  # (S, A, S) row-stochastic
    r: np.ndarray  # (S, A)
    horizon: int
    s1: int
    reward_range: tuple[float, float]
    state_coords: np.ndarray  # (S, d)
    # Optional exact factorisation of P for product grids: (Px (A, n, n), Py (A, n, n)) with
    # P[(x,y), a, (x',y')] = Px[a, x, x'] Py[a, y, y'] (state index x * n + y). Exact DP then costs
    # O(A n^3) per step instead of reading the dense (S, A, S) array (37 MB on bumps2d).
    separable: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self):
        if not isinstance(self.horizon, (int, np.integer)) or self.horizon <= 0:
            raise UserError(f"env {self.name}: horizon must be a positive integer, got {self.horizon}")
        if self.P.ndim != 3 or self.P.shape[0] != self.P.shape[2] or self.r.shape != self.P.shape[:2]:
            raise UserError(f"env {self.name}: P must be (S, A, S) and r (S, A), got {self.P.shape}, {self.r.shape}")
        if not np.allclose(self.P.sum(-1), 1.0, atol=1e-8) or (self.P < 0).any():
            raise UserError(f"env {self.name}: every row of P must be a probability distribution")
        if not 0 <= self.s1 < self.P.shape[0]:
            raise UserError(f"env {self.name}: start state {self.s1} outside 0..{self.P.shape[0] - 1}")
        lo, hi = self.reward_range
        if not lo < hi:
            raise UserError(f"env {self.name}: reward range must have r_min < r_max, got {self.reward_range}")
        if self.separable is not None:
            Px, Py = self.separable
            A, n = Px.shape[0], Px.shape[1]
            if Px.shape != (A, n, n) or Py.shape != (A, n, n) or A != self.P.shape[1] or n * n != self.P.shape[0]:
                raise UserError(f"env {self.name}: separable factors must be (A, n, n) with n^2 = S")
        if self.r.min() < lo - 1e-12 or self.r.max() > hi + 1e-12:
            raise UserError(f"env {self.name}: rewards span [{self.r.min()}, {self.r.max()}], outside {self.reward_range}")

    # --- sizes and features ---
    @property
    def num_states(self) -> int:
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        return self.P.shape[1]

    @property
    def state_dim(self) -> int:
        return self.state_coords.shape[1]

    @property
    def features(self) -> np.ndarray:
        """``(S*A, d+1)``: state coordinates then the action index, row ``z = s*A + a``."""
        S, A = self.num_states, self.num_actions
        coords = np.repeat(self.state_coords, A, axis=0)
        acts = np.tile(np.arange(A, dtype=np.float64), S)[:, None]
        return np.concatenate([coords, acts], axis=1)

    # --- exact dynamic programming ---
    def expected_next(self, V: np.ndarray) -> np.ndarray:
        """(P V)(s, a) = sum_s' P(s'|s, a) V(s') for ``V (S,)`` or ``(k, S)``; shape ``(S, A)`` or ``(k, S, A)``."""
        V = np.asarray(V, dtype=np.float64)
        if self.separable is None:
            return self.P @ V if V.ndim == 1 else np.einsum("sat,kt->ksa", self.P, V)
        Px, Py = self.separable
        A, n = Px.shape[0], Px.shape[1]
        Vm = V.reshape(-1, n, n)  # (k, x', y')
        # sum_{x',y'} Px[a,x,x'] Vm[k,x',y'] Py[a,y,y']
        out = np.matmul(np.matmul(Px[None], Vm[:, None]), np.swapaxes(Py, 1, 2)[None])  # (k, A, n, n)
        out = out.reshape(-1, A, n * n).transpose(0, 2, 1)
        return out[0] if V.ndim == 1 else out

    def evaluate(self, policy: np.ndarray, r: np.ndarray | None = None) -> float:
        """Exact V^pi_1(s1) for a deterministic Markov ``policy (H, S)`` under reward ``r (S, A)``."""
        return float(self.policy_values(policy, r)[0, self.s1])

    def policy_values(self, policy: np.ndarray, r: np.ndarray | None = None) -> np.ndarray:
        """V^pi_h(s) for h = 1..H+1; shape ``(H+1, S)`` (last row zeros)."""
        r = self.r if r is None else r
        policy = np.asarray(policy)
        H, S = self.horizon, self.num_states
        if policy.shape != (H, S):
            raise UserError(f"policy must have shape (H, S) = {(H, S)}, got {policy.shape}")
        V = np.zeros((H + 1, S))
        idx = np.arange(S)
        for h in range(H - 1, -1, -1):
            a = policy[h]
            if self.separable is None:
                V[h] = r[idx, a] + self.P[idx, a] @ V[h + 1]
            else:
                V[h] = r[idx, a] + self.expected_next(V[h + 1])[idx, a]
        return V

    def optimal(self, r: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """(V*_1(s1), optimal policy ``(H, S)``) by backward induction (ties to the lowest action)."""
        r = self.r if r is None else r
        H, S = self.horizon, self.num_states
        V = np.zeros(S)
        pol = np.zeros((H, S), dtype=np.int64)
        for h in range(H - 1, -1, -1):
            Q = r + self.expected_next(V)
            pol[h] = Q.argmax(1)
            V = Q.max(1)
        return float(V[self.s1]), pol

    @property
    def optimal_value(self) -> float:
        return self.optimal()[0]

    def uniform_value(self) -> float:
        """Value of the uniformly random (stochastic) policy: the mean of all deterministic policies' values."""
        V = np.zeros(self.num_states)
        for _ in range(self.horizon):
            V = (self.r + self.expected_next(V)).mean(1)
        return float(V[self.s1])

    # --- sampling (Gymnasium-style episode interface on top) ---
    def rollout(self, policy: np.ndarray, rng: np.random.Generator) -> Trajectory:
        """Sample one episode of ``policy (H, S)`` from s1."""
        H = self.horizon
        states = np.empty(H + 1, dtype=np.int64)
        actions = np.empty(H, dtype=np.int64)
        states[0] = self.s1
        u = rng.random(H)
        for h in range(H):
            s = states[h]
            a = policy[h, s]
            actions[h] = a
            cdf = np.cumsum(self.P[s, a])
            states[h + 1] = min(int(np.searchsorted(cdf, u[h] * cdf[-1], side="right")), self.num_states - 1)
        rewards = self.r[states[:-1], actions]
        return Trajectory(states, actions, rewards)

    def reset(self, rng: np.random.Generator) -> int:
        """Gymnasium-style: start an episode; returns s1."""
        object.__setattr__(self, "_state", (self.s1, 0, rng))
        return self.s1

    def step(self, action: int) -> tuple[int, float, bool]:
        """Gymnasium-style: (next_state, reward, done)."""
        s, h, rng = getattr(self, "_state")
        if h >= self.horizon:
            raise UserError(f"env {self.name}: step called after the episode ended (H = {self.horizon}); call reset")
        cdf = np.cumsum(self.P[s, action])
        s2 = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), self.num_states - 1)
        object.__setattr__(self, "_state", (s2, h + 1, rng))
        return s2, float(self.r[s, action]), h + 1 >= self.horizon


def _gauss_rows(grid: np.ndarray, means: np.ndarray, sd: float) -> np.ndarray:
    # Gaussian weights restricted to the grid and renormalised: noise is applied *before* the grid
    # restriction, which is what gives the spec's V* = 3.221 (clipping after the noise gives 3.18).
    w = np.exp(-0.5 * ((grid[None, :] - means[:, None]) / sd) ** 2)
    return w / w.sum(1, keepdims=True)


def bumps1d(horizon: int = 8) -> GriddedMDP:
    """Env A: S = [0,1] on 101 points, a in {-1,0,+1}, s' ~ N(clip(s + 0.15a), 0.06^2) on the grid.

    r = exp(-(s-0.85)^2/(2*0.07^2)) + 0.3 exp(-(s-0.25)^2/(2*0.07^2)) - 0.05|a|, s1 = 0.3. V* = 3.221.
    """
    grid = np.linspace(0.0, 1.0, 101)
    moves = np.array([-1.0, 0.0, 1.0])
    P = np.stack([_gauss_rows(grid, np.clip(grid + 0.15 * m, 0, 1), 0.06) for m in moves], axis=1)
    bump = np.exp(-((grid - 0.85) ** 2) / (2 * 0.07**2)) + 0.3 * np.exp(-((grid - 0.25) ** 2) / (2 * 0.07**2))
    r = bump[:, None] - 0.05 * np.abs(moves)[None, :]
    return GriddedMDP("bumps1d", P, r, horizon, 30, (-0.05, 1.0), grid[:, None])


def bumps2d(horizon: int = 10, n: int = 31) -> GriddedMDP:
    """Env A2 [derived]: [0,1]^2 on n x n, actions stay/left/right/down/up (step 0.15), noise 0.06 per axis.

    r = exp(-|s-(.85,.85)|^2/(2*.1^2)) + 0.3 exp(-|s-(.25,.25)|^2/(2*.1^2)) - 0.05*1{move}; s1 = (0.3, 0.3).
    """
    g = np.linspace(0.0, 1.0, n)
    moves = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float64)
    X, Y = np.meshgrid(g, g, indexing="ij")
    coords = np.stack([X.ravel(), Y.ravel()], 1)
    S = n * n
    P = np.empty((S, len(moves), S))
    Pxs, Pys = [], []
    for a, m in enumerate(moves):
        Px = _gauss_rows(g, np.clip(g + 0.15 * m[0], 0, 1), 0.06)  # (n, n): x -> x'
        Py = _gauss_rows(g, np.clip(g + 0.15 * m[1], 0, 1), 0.06)
        # separable noise: P((x',y')|(x,y)) = Px[x,x'] Py[y,y']
        P[:, a, :] = np.einsum("ik,jl->ijkl", Px, Py).reshape(S, S)
        Pxs.append(Px)
        Pys.append(Py)
    d_hi = ((coords - 0.85) ** 2).sum(1)
    d_lo = ((coords - 0.25) ** 2).sum(1)
    bump = np.exp(-d_hi / (2 * 0.1**2)) + 0.3 * np.exp(-d_lo / (2 * 0.1**2))
    cost = 0.05 * (np.abs(moves).sum(1) > 0)
    r = bump[:, None] - cost[None, :]
    s1 = int(np.argmin(((coords - 0.3) ** 2).sum(1)))
    return GriddedMDP("bumps2d", P, r, horizon, s1, (-0.05, 1.0), coords, (np.stack(Pxs), np.stack(Pys)))


def chain(horizon: int = 12, n: int = 8) -> GriddedMDP:
    """Env B (RiverSwim-like): n states, actions left/right; left deterministic; right moves right w.p. 0.7,
    stays 0.15, left 0.15 (mass off the ends stays put); r(0, left) = 0.08, r(n-1, right) = 1; s1 = 1.
    V* = 2.160 for n = 8, H = 12."""
    P = np.zeros((n, 2, n))
    for s in range(n):
        P[s, 0, max(s - 1, 0)] += 1.0
        P[s, 1, min(s + 1, n - 1)] += 0.7
        P[s, 1, s] += 0.15
        P[s, 1, max(s - 1, 0)] += 0.15
    r = np.zeros((n, 2))
    r[0, 0] = 0.08
    r[n - 1, 1] = 1.0
    return GriddedMDP("chain", P, r, horizon, 1, (0.0, 1.0), np.arange(n, dtype=np.float64)[:, None])


def from_arrays(P, r, horizon, s1=0, reward_range=None, state_coords=None, name="user") -> GriddedMDP:
    """A user-supplied gridded MDP from arrays (exact regret). ``P (S, A, S)``, ``r (S, A)``."""
    P = np.asarray(P, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    if reward_range is None:
        reward_range = (float(r.min()), float(r.max()) + (1.0 if r.min() == r.max() else 0.0))
    if state_coords is None:
        state_coords = np.arange(P.shape[0], dtype=np.float64)[:, None]
    return GriddedMDP(name, P, r, horizon, int(s1), tuple(reward_range), np.asarray(state_coords, np.float64))


ENV_NAMES = ("bumps1d", "bumps2d", "chain")


def make_env(name: str, horizon: int | None = None) -> GriddedMDP:
    """Environment by name: one of ENV_NAMES, or ``"package.module:factory"`` for a user-supplied gridded
    MDP (``factory(horizon=...)`` or ``factory()`` returning a :class:`GriddedMDP`, e.g. via ``from_arrays``).
    ``horizon`` overrides the default H."""
    makers = {"bumps1d": bumps1d, "bumps2d": bumps2d, "chain": chain}
    if name not in makers and ":" not in name:
        raise UserError(f"unknown env '{name}'; valid envs: {', '.join(ENV_NAMES)} or module:factory")
    if horizon is not None and (not isinstance(horizon, (int, np.integer)) or horizon <= 0):
        raise UserError(f"--horizon must be a positive integer, got {horizon}")
    factory = makers[name] if name in makers else _user_factory(name)
    env = factory() if horizon is None else factory(horizon=int(horizon))
    if not isinstance(env, GriddedMDP):
        raise UserError(f"env '{name}': the factory returned {type(env).__name__}, not a GriddedMDP (see from_arrays)")
    return env


def _user_factory(spec: str) -> Callable:
    import importlib

    mod_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"env '{spec}': cannot load the factory ({type(e).__name__}: {e})") from None
    if not callable(factory):
        raise UserError(f"env '{spec}': {attr} is not callable")
    return factory


class EpisodicMDP(Protocol):
    """A user MDP without a grid (Gymnasium-style): regret only through Monte-Carlo values or a given V*."""

    horizon: int
    reward_range: tuple[float, float]
    num_actions: int

    def reset(self, rng: np.random.Generator): ...

    def step(self, state, action: int, rng: np.random.Generator) -> tuple[object, float]: ...


def monte_carlo_value(
    mdp: EpisodicMDP, policy_fn: Callable[[int, object], int], episodes: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Monte-Carlo estimate of V^pi_1 for a user MDP: (mean return, standard error) over ``episodes``."""
    if mdp.horizon <= 0:
        raise UserError(f"user MDP: horizon must be positive, got {mdp.horizon}")
    if episodes < 2:
        raise UserError(f"monte_carlo_value: need at least 2 episodes, got {episodes}")
    lo, hi = mdp.reward_range
    returns = np.empty(episodes)
    for e in range(episodes):
        s = mdp.reset(rng)
        total = 0.0
        for h in range(mdp.horizon):
            s, rew = mdp.step(s, policy_fn(h, s), rng)
            if not lo - 1e-9 <= rew <= hi + 1e-9:
                raise UserError(f"reward {rew:.4g} outside the declared range [{lo}, {hi}] at episode {e + 1}, step {h + 1}")
            total += rew
        returns[e] = total
    return float(returns.mean()), float(returns.std(ddof=1) / np.sqrt(episodes))
