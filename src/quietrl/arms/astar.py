"""Prioritised space-time A* (numpy/Python, offline): a reference success rate, neither optimal nor complete.

Agents plan one at a time in index order on (cell, t), avoiding the cells reserved by earlier agents under the
env's ``block_occupied`` rule: a move into v at t+1 is forbidden when v is reserved at t+1 or at t (which
also rules out swaps and following), waiting at u when u is reserved at t+1. An agent is removed on arrival,
so it reserves nothing afterwards. An agent without a plan within the horizon waits in place (and is reserved
there) so later agents route around it. The plans are then executed in the JAX env to measure the achieved
individual success, since earlier agents did not plan around later ones that failed.
"""

from __future__ import annotations

import heapq

import numpy as np

from quietrl.arms.env import MOVES
from quietrl.arms.types import TaskBank


def plan_task(obstacles: np.ndarray, starts: np.ndarray, goals: np.ndarray, dist: np.ndarray,
              horizon: int) -> np.ndarray:
    """Joint open-loop plan (n, horizon) of action indices for one task; dist (n, R, C) BFS heuristics."""
    rows, cols = obstacles.shape
    n = len(starts)
    reserved: set[tuple[int, int, int]] = set()  # (row, col, t)
    plans = np.zeros((n, horizon), dtype=np.int32)
    for i in range(n):
        path = _search(obstacles, tuple(starts[i]), tuple(goals[i]), dist[i], horizon, reserved)
        if path is None:
            for t in range(horizon + 1):
                reserved.add((int(starts[i][0]), int(starts[i][1]), t))
            continue
        for t, (r, c) in enumerate(path):
            reserved.add((r, c, t))
            if t > 0:
                dr, dc = r - path[t - 1][0], c - path[t - 1][1]
                plans[i, t - 1] = int(np.nonzero((MOVES[:, 0] == dr) & (MOVES[:, 1] == dc))[0][0])
    return plans


def _search(obstacles, start, goal, h, horizon, reserved):
    rows, cols = obstacles.shape
    if (start[0], start[1], 0) in reserved:
        return None
    frontier = [(int(h[start]), 0, start, None)]
    parent: dict[tuple, tuple | None] = {}
    while frontier:
        f, t, u, prev = heapq.heappop(frontier)
        if (u, t) in parent:
            continue
        parent[(u, t)] = prev
        if u == goal:
            path = []
            node = (u, t)
            while node is not None:
                path.append(node[0])
                node = parent[node]
            return path[::-1]
        if t == horizon:
            continue
        for dr, dc in MOVES:
            v = (u[0] + int(dr), u[1] + int(dc))
            if not (0 <= v[0] < rows and 0 <= v[1] < cols) or obstacles[v]:
                continue
            if (v[0], v[1], t + 1) in reserved:
                continue
            if v != u and (v[0], v[1], t) in reserved:
                continue
            if (v, t + 1) not in parent and h[v] < 10_000:
                heapq.heappush(frontier, (t + 1 + int(h[v]), t + 1, v, (u, t)))
    return None


def reference_success(env, tasks: np.ndarray) -> dict[str, float]:
    """Plan every bank task in ``tasks`` with prioritised A* and execute the plans in ``env``: ISR, CSR."""
    import jax
    import jax.numpy as jnp

    bank: TaskBank = env.bank
    plans = np.stack([plan_task(bank.obstacles[k], bank.starts[k], bank.goals[k], bank.dist[k], env.horizon)
                      for k in tasks])  # (K, n, H)

    def run(task, plan):
        _, st = env.reset_to(task)

        def step(st, a):
            _, st, _, _, _ = env.step_arrays(st, a)
            return st, None

        st, _ = jax.lax.scan(step, st, plan.T)
        return st.arrived

    arrived = np.asarray(jax.jit(jax.vmap(run))(jnp.asarray(tasks, jnp.int32), jnp.asarray(plans)))
    return {"isr": float(arrived.mean()), "csr": float(arrived.all(-1).mean())}
