"""Render a MAPF episode as a PNG strip of frames (matplotlib, via quietrl.core.plotting)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from quietrl.arms.env import MAPFEnv


def record_episode(env: MAPFEnv, policy, params, task: int, sparsity: int = 0, seed: int = 0):
    """Positions (H+1, n, 2) and arrived flags (H+1, n) of one episode on bank task ``task``.

    ``policy(params, obs (n, D), key) -> actions (n,)``.
    """
    obs, st = env.reset_to(jnp.int32(task), sparsity)

    def step(carry, k):
        obs, st = carry
        a = policy(params, obs, k)
        obs, st2, _, _, _ = env.step_arrays(st, a)
        return (obs, st2), (st2.pos, st2.arrived)

    _, (pos, arrived) = jax.jit(lambda o, s, ks: jax.lax.scan(step, (o, s), ks))(
        obs, st, jax.random.split(jax.random.PRNGKey(seed), env.horizon))
    pos = np.concatenate([np.asarray(st.pos)[None], np.asarray(pos)])
    arrived = np.concatenate([np.asarray(st.arrived)[None], np.asarray(arrived)])
    return pos, arrived


def render_strip(env: MAPFEnv, task: int, pos: np.ndarray, arrived: np.ndarray, frames: int = 8, title: str = ""):
    """Figure with ``frames`` evenly spaced frames: obstacles grey, agents as numbered dots, goals as squares."""
    from quietrl.core.plotting import new_figure

    T = len(pos)
    # stop showing frames once everyone is done
    last = int(np.argmax(arrived.all(-1))) if arrived.all(-1).any() else T - 1
    idx = np.unique(np.linspace(0, last, min(frames, last + 1)).round().astype(int))
    fig, axes = new_figure(1, len(idx), size=(1.8, 1.9))
    axes = np.atleast_1d(axes).ravel()
    obst = env.bank.obstacles[task]
    goals = env.bank.goals[task]
    colors = [f"C{i % 10}" for i in range(env.num_agents)]
    for ax, t in zip(axes, idx):
        ax.imshow(obst, cmap="Greys", vmin=0, vmax=1.5)
        for i in range(env.num_agents):
            ax.scatter(goals[i, 1], goals[i, 0], marker="s", s=40, facecolors="none", edgecolors=colors[i])
            if not arrived[t, i] or t == 0:
                ax.scatter(pos[t, i, 1], pos[t, i, 0], s=40, color=colors[i])
        ax.set_title(f"t={t}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
