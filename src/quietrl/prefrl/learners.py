"""Learners behind one interface: ``select_pair(history) -> (policy1, policy2)``, ``update(tau1, tau2, label)``.

Pair rules (spec §3, all reconstructions [derived], the paper's rule is not readable):
  ucb         optimistic plan (both bonuses) vs plug-in plan (no bonuses);
  ucb_centred ucb with the reference-centred reward bonus ||phi(z) - m_h||, m_h from recent pi2 rollouts;
  perturbed   two independent posterior draws theta ~ N(theta_hat, beta_r^2 V^-1), each planned with bonuses;
  maxinfo     among plausible candidates (ucb pair + perturbed draws), the pair with the largest
              ||E_pi Psi - E_pi' Psi||_{V^-1} in the learned model;
  greedy      both plug-in; uniform: fresh uniformly random deterministic policies;
  oracle_ucb  numeric-reward kernel UCB seeing r + N(0, 0.1^2) per step, playing its optimistic policy twice.
Policies are ``(H, S)`` arrays of action indices.
"""

from __future__ import annotations

import abc
import time

import jax
import numpy as np
from threadpoolctl import threadpool_limits

from quietrl.core.errors import UserError
from quietrl.prefrl.envs import GriddedMDP, Trajectory
from quietrl.prefrl.estimators import (
    ExactRewardModel,
    PreferenceRewardModel,
    RidgeRewardModel,
    TransitionModel,
    kappa_btl,
    theory_beta,
)
from quietrl.prefrl.features import grid_features
from quietrl.prefrl.kernels import state_action_kernel
from quietrl.prefrl.oracle import BTLOracle
from quietrl.prefrl.planning import action_blocks, expand_blocks, feature_occupancy, plan_linear
from quietrl.prefrl.types import LearnerConfig, RunResult

__all__ = ["Learner", "ExactReward", "make_learner", "run_learner", "default_kernel"]


_DEFAULT_INDUCING = {"bumps1d": 30, "bumps2d": 36}


def default_kernel(env: GriddedMDP) -> str:
    """SE on continuous grids, delta on the chain (tabular dueling RL)."""
    return "delta" if env.name == "chain" else "se"


class Learner(abc.ABC):
    """Shared machinery: features, reward and transition models, planning with both bonuses."""

    def __init__(self, env: GriddedMDP, cfg: LearnerConfig, rng: np.random.Generator):
        self.env, self.cfg, self.rng = env, cfg, rng
        self.H, self.S, self.A = env.horizon, env.num_states, env.num_actions
        if cfg.algo == "uniform":
            return
        kname = cfg.kernel or default_kernel(env)
        kernel = state_action_kernel(kname, cfg.lengthscale, env.state_dim)
        n_ind = None if kname == "delta" else (cfg.inducing_states or _DEFAULT_INDUCING.get(env.name, 30))
        Phi = grid_features(env, kernel, n_ind)
        Phi_S = action_blocks(Phi, self.A)
        if Phi_S is not None:
            # k_S x delta_A: keep the features exactly factored (planning then costs A times less)
            Phi = expand_blocks(Phi_S, self.A)
        self.Phi, self.Phi_S = Phi, Phi_S
        self._blocked = Phi_S is not None
        with jax.enable_x64(True):
            self._plan_F = jax.numpy.asarray(Phi_S if self._blocked else Phi)  # device copy, made once
        self.kappa = kappa_btl(cfg.temperature, env.horizon, env.reward_range) if cfg.beta_mode == "theory" else 1.0
        self._exact = cfg.reward_features == "exact"
        if self._exact:
            self.reward_model = ExactReward(kernel(env.features), cfg.lam_r, cfg.rho, cfg.temperature)
        else:
            self.reward_model = PreferenceRewardModel(
                self.Phi, cfg.temperature, cfg.lam_r, cfg.rho, self.kappa, solver=cfg.solver,
                hessian_refresh=cfg.hessian_refresh, Phi_S=Phi_S,
            )
        self.trans = TransitionModel(self.Phi, self.S, cfg.lam_P, Phi_S=Phi_S)
        self.episodes = 0
        self.recent_pi2: list[np.ndarray] = []  # per-step z indices of recent pi2 rollouts (centred bonus)

    # --- confidence multiplier ---
    def beta_r(self) -> float:
        if self.cfg.beta_mode == "constant":
            return self.cfg.beta_scale
        return self.cfg.beta_scale * theory_beta(
            self.reward_model.logdet_ratio(), self.kappa, self.cfg.lam_r, delta=self.cfg.delta
        )

    def _reward_bonus(self) -> np.ndarray:
        if self.cfg.bonus == "centred" and self.recent_pi2:
            zs = np.stack(self.recent_pi2[-self.cfg.centre_window :])  # (k, H)
            m_h = self.Phi[zs].mean(0)  # (H, m)
            return self.reward_model.centred_widths(m_h)
        return self.reward_model.widths()

    def reserve(self, episodes: int) -> None:
        """Preallocate buffers for ``episodes`` (fixed shapes: the jitted solvers compile once per run)."""
        if hasattr(self, "reward_model"):
            self.reward_model.reserve(episodes)

    def _plan_batch(self, specs) -> list[np.ndarray]:
        """One jitted DP for several plans. specs: [(theta or None, reward_bonus, transition_bonus), ...];
        returns one policy (H, S) per spec."""
        rm = self.reward_model
        need_rb = any(rb for _, rb, _ in specs)
        rbonus = self._reward_bonus() if need_rb else np.zeros(self.Phi.shape[0])  # (Z,) or (H, Z)
        br = self.beta_r() if need_rb else 0.0
        R = np.stack([rm.reward(theta) for theta, _, _ in specs])
        cr = np.array([br if rb else 0.0 for _, rb, _ in specs])
        ct = np.array([self.cfg.beta_P if tb else 0.0 for _, _, tb in specs])
        return self._run_plan(R, rbonus, cr, ct)

    def _run_plan(self, R, rbonus, cr, ct) -> list[np.ndarray]:
        pols, _ = plan_linear(R, rbonus, cr, self.trans.widths(), ct, self._plan_F, self.trans.PhiTC, self.trans.A.L,
                              self.rng, self.H, blocked=self._blocked)
        return list(pols)

    def _plan(self, theta=None, reward_bonus=True, transition_bonus=True):
        return self._plan_batch([(theta, reward_bonus, transition_bonus)])[0]

    @abc.abstractmethod
    def select_pair(self, history=None) -> tuple[np.ndarray, np.ndarray]:
        """Two deterministic Markov policies (H, S) for the next episode. ``history`` is accepted for the
        interface but unused: every learner keeps its sufficient statistics itself (fed by ``update``)."""

    def update(self, tau1: Trajectory, tau2: Trajectory, label: int) -> None:
        """Add both trajectories' transitions and the preference; refit every ``refit_every`` episodes."""
        z1, z2 = tau1.z(self.A), tau2.z(self.A)
        self.trans.add(np.concatenate([z1, z2]), np.concatenate([tau1.states[1:], tau2.states[1:]]))
        if self._exact:
            self.reward_model.add_episode(z1, z2, label)
        else:
            self.reward_model.add(self.Phi[z1].sum(0) - self.Phi[z2].sum(0), label)
        self.recent_pi2.append(z2)
        if len(self.recent_pi2) > self.cfg.centre_window:
            self.recent_pi2.pop(0)
        self.episodes += 1
        if self.episodes % self.cfg.refit_every == 0:
            self.reward_model.refit(self.cfg.newton_iters)

    def reward_estimate(self) -> np.ndarray | None:
        """Current reward estimate on the grid (|Z|,), or None."""
        return self.reward_model.reward() if hasattr(self, "reward_model") else None


class ExactReward:
    """The exact (dual) kernel reward model behind the calls a learner makes of a reward model: episodes
    enter as visited state-action indices; the refit is the dual Newton-PCG MLE warm-started from the last
    one; widths ||phi(z)||_{V_n^{-1}} are the cached exact ones. Buffers grow by doubling."""

    def __init__(self, Kzz: np.ndarray, lam: float, rho: float, c: float):
        self.model = ExactRewardModel(Kzz, lam=lam, rho=rho, c=c)

    def reserve(self, episodes: int) -> None:
        pass  # the model doubles its buffers when full (a reserve would hold an (N, |Z|) array from the start)

    def add_episode(self, z1: np.ndarray, z2: np.ndarray, label: int) -> None:
        self.model.add(z1, z2, label)

    def refit(self, newton_steps: int = 3):
        return self.model.refit(newton_steps=newton_steps)

    def reward(self, theta=None) -> np.ndarray:
        if theta is not None:
            raise UserError("the exact reward model has no parameter vector to perturb (use reward_features=nystrom)")
        return self.model.reward()

    def widths(self) -> np.ndarray:
        return self.model.widths()


class Uniform(Learner):
    def select_pair(self, history=None):
        return (self.rng.integers(0, self.A, (self.H, self.S)), self.rng.integers(0, self.A, (self.H, self.S)))

    def update(self, tau1, tau2, label):
        pass


class Greedy(Learner):
    def select_pair(self, history=None):
        # two plug-in plans: identical up to random ties
        p1, p2 = self._plan_batch([(None, False, False), (None, False, False)])
        return p1, p2


class UCB(Learner):
    def select_pair(self, history=None):
        p1, p2 = self._plan_batch([(None, True, True), (None, False, False)])
        return p1, p2


class Perturbed(Learner):
    def _draw(self):
        return self.reward_model.theta + self.beta_r() * self.reward_model.V.sample(self.rng, 1)[0]

    def select_pair(self, history=None):
        keep = self.cfg.keep_reward_bonus
        p1, p2 = self._plan_batch([(self._draw(), keep, True), (self._draw(), keep, True)])
        return p1, p2


class MaxInfo(Perturbed):
    """Most-informative plausible pair [derived; not prototyped in the spec]. Occupancies come from the
    learned transition matrix with negative entries clipped and rows renormalised (ours)."""

    def select_pair(self, history=None):
        keep = self.cfg.keep_reward_bonus
        cands = self._plan_batch(
            [(None, True, True), (None, False, False)] + [(self._draw(), keep, True) for _ in range(self.cfg.pool_size)]
        )
        M = np.maximum(self.trans.matrix(), 0.0)  # (|Z|, S)
        rows = M.sum(1, keepdims=True)
        M = np.where(rows > 0, M / np.where(rows > 0, rows, 1.0), 1.0 / self.S)
        E = np.stack([feature_occupancy(p, M, self.Phi, self.env.s1) for p in cands])  # (k, m)
        D = E - E[1]  # differences to the plug-in policy (gauge-free comparisons)
        VinvD = self.reward_model.V.solve(D.T)
        w = self.beta_r() * np.sqrt(np.maximum(np.sum(D.T * VinvD, 0), 0.0))
        mean = D @ self.reward_model.theta
        plausible = np.nonzero(mean + w >= np.max(mean - w) - 1e-12)[0]
        best, pair = -1.0, (0, 1)
        for i in plausible:
            for j in plausible:
                if j <= i:
                    continue
                d = E[i] - E[j]
                val = float(d @ self.reward_model.V.solve(d))
                if val > best:
                    best, pair = val, (int(i), int(j))
        return cands[pair[0]], cands[pair[1]]


class OracleUCB(Learner):
    """Numeric-reward KOVI-style UCB: ridge reward + bonus, same transition learner and planner."""

    def __init__(self, env, cfg, rng):
        super().__init__(env, cfg, rng)
        self.ridge = RidgeRewardModel(self.Phi, cfg.lam_r, Phi_S=self.Phi_S)

    def select_pair(self, history=None):
        (pol,) = self._run_plan(self.ridge.reward()[None, :], self.ridge.widths(), np.array([self.cfg.beta_scale]),
                                np.array([self.cfg.beta_P]))
        return pol, pol

    def update(self, tau1, tau2, label):
        for tau in (tau1, tau2):
            z = tau.z(self.A)
            noisy = tau.rewards + self.cfg.oracle_noise * self.rng.standard_normal(len(z))
            self.ridge.add(z, noisy)
        z1, z2 = tau1.z(self.A), tau2.z(self.A)
        self.trans.add(np.concatenate([z1, z2]), np.concatenate([tau1.states[1:], tau2.states[1:]]))

    def reward_estimate(self):
        return self.ridge.reward()


_LEARNERS = {
    "uniform": Uniform,
    "greedy": Greedy,
    "ucb": UCB,
    "ucb_centred": UCB,
    "perturbed": Perturbed,
    "maxinfo": MaxInfo,
    "oracle_ucb": OracleUCB,
}


def make_learner(env: GriddedMDP, cfg: LearnerConfig, rng: np.random.Generator) -> Learner:
    """Learner for ``cfg.algo`` (``ucb_centred`` is ``ucb`` with the centred bonus)."""
    import dataclasses

    if cfg.algo == "ucb_centred" and cfg.bonus != "centred":
        cfg = dataclasses.replace(cfg, bonus="centred")
    return _LEARNERS[cfg.algo](env, cfg, rng)


def run_learner(env: GriddedMDP, cfg: LearnerConfig, episodes: int, seed: int, progress=None) -> RunResult:
    """Run ``episodes`` preference episodes; exact V^pi1, V^pi2 of the chosen policies by DP each episode.

    ``progress``: optional callable(episode_index) for progress bars.
    """
    if not isinstance(episodes, (int, np.integer)) or episodes <= 0:
        raise UserError(f"--episodes must be a positive integer, got {episodes}")
    # Small matrices: a multithreaded BLAS only adds contention (measured 5x slower on a loaded 2-core box).
    with threadpool_limits(1):
        return _run(env, cfg, episodes, seed, progress)


def _run(env, cfg, episodes, seed, progress):
    rng = np.random.default_rng(seed)
    learner = make_learner(env, cfg, np.random.default_rng(rng.integers(2**63)))
    learner.reserve(episodes)
    oracle = BTLOracle(env.reward_range, cfg.temperature)
    env_rng = np.random.default_rng(rng.integers(2**63))
    vstar = env.optimal_value
    H = env.horizon
    v1, v2, secs = np.zeros(episodes), np.zeros(episodes), np.zeros(episodes)
    labels = np.zeros(episodes, dtype=np.int8)
    st1 = np.zeros((episodes, H + 1), dtype=np.int32)
    st2 = np.zeros((episodes, H + 1), dtype=np.int32)
    for n in range(episodes):
        t0 = time.perf_counter()
        p1, p2 = learner.select_pair()
        tau1, tau2 = env.rollout(p1, env_rng), env.rollout(p2, env_rng)
        o = oracle(tau1.rewards, tau2.rewards, n + 1, env_rng)  # episodes and steps are 1-based in errors
        learner.update(tau1, tau2, o)
        secs[n] = time.perf_counter() - t0
        v1[n], v2[n] = env.evaluate(p1), env.evaluate(p2)
        labels[n] = o
        st1[n], st2[n] = tau1.states, tau2.states
        if progress is not None:
            progress(n)
    return RunResult(cfg.algo, env.name, seed, vstar, v1, v2, labels, secs, st1, st2, learner.reward_estimate())
