"""A tiny training stage used by test_train.py, run as a script so that it can be killed mid-stage.

usage: python _resume_job.py RUN_DIR KILL_AFTER_CHUNK   (0 = never killed)
"""

import os
import signal
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.core.runs import RunDir
from quietrl.core.summary import Row
from quietrl.core.train import run_chunks

CONFIG = {"lr": 0.05, "updates_per_chunk": 5, "chunks": 6}


def make_chunk(opt):
    def loss(w, x, y):
        return jnp.mean((x @ w - y) ** 2)

    def update(carry, _):
        w, opt_state, key = carry
        key, kx = jax.random.split(key)
        x = jax.random.normal(kx, (32, 3))
        y = x @ jnp.array([1.0, -2.0, 0.5])
        l, g = jax.value_and_grad(loss)(w, x, y)
        upd, opt_state = opt.update(g, opt_state)
        return (optax.apply_updates(w, upd), opt_state, key), {"loss": l}

    @jax.jit
    def chunk(carry):
        return jax.lax.scan(update, carry, None, length=CONFIG["updates_per_chunk"])

    return chunk


def main(path, kill_after):
    try:
        run = RunDir.open(path)
    except Exception:
        run = RunDir.create(path, {"test": True}, seed=0)
    stage = run.stage("demo", "regression", 0)
    if stage.done:
        return
    with stage.running():
        stage.log_metrics({"event": "start", "config": CONFIG})
        opt = optax.adam(CONFIG["lr"])
        w0 = jnp.zeros(3)
        state = (w0, opt.init(w0), jax.random.PRNGKey(0))

        def report(chunk, st, metrics):
            if chunk == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # killed after the chunk ran, before it was saved
            return {"loss": float(np.mean(metrics["loss"]))}

        state = run_chunks(stage, state, make_chunk(opt), CONFIG["chunks"], "demo.regression", CONFIG,
                           metrics_fn=report)
        w = np.asarray(state[0])
        stage.log_metrics({"event": "end", "w": w.round(6).tolist()})
        stage.write_summary([Row("weight error", float(np.abs(w - [1.0, -2.0, 0.5]).max()))])


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
