"""Class-conditioned 8x8 digits (scikit-learn's bundled ``load_digits``: 1,797 images, no download).

Images are scaled from [0, 16] to [-1, 1] and flattened to 64 dimensions; the prompt is the class 0-9.
The GRPO reward is r = pref + lambda q with
  pref = log p_clf(c | x), a linear softmax classifier (linear discriminant analysis: class means and a
         shared, shrunk covariance, in closed form) fitted once on the data and then frozen (clipped at
         -10 so that one hopeless sample cannot dominate a group's advantages), and
  q    = clip((log N(x; m_c, S_c) - L_c) / (5 s_c), -1, 0), a per-class Gaussian with shrunk covariance,
         L_c the median and s_c the std of the class's own data log-likelihoods: a sample that is
         classified correctly but off the data manifold (residual sampler noise) loses q.
The acceptance check uses a *different* classifier (an RBF support-vector machine), so that fine-tuning
against the logistic-regression reward cannot pass it by exploiting that one model's weaknesses.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

NUM_CLASSES = 10
DIM = 64
PREF_FLOOR = -10.0
COV_SHRINK = 0.05  # added to the diagonal of each class covariance (pixels in [-1, 1])
Q_WIDTH = 5.0  # q falls from 0 to -1 over 5 class-data standard deviations of the log-likelihood


@functools.lru_cache(maxsize=1)
def load_data() -> tuple[np.ndarray, np.ndarray]:
    """(X, y): X (1797, 64) float32 in [-1, 1], y (1797,) int32 class labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 8.0 - 1.0).astype(np.float32), d.target.astype(np.int32)


@functools.lru_cache(maxsize=1)
def _fitted() -> dict:
    """Reward classifier, per-class Gaussians and the sample table, fitted deterministically once."""
    x, y = load_data()
    xd = x.astype(np.float64)
    counts = np.bincount(y, minlength=NUM_CLASSES)
    table = np.zeros((NUM_CLASSES, counts.max()), np.int32)
    means = np.zeros((NUM_CLASSES, DIM))
    prec_chol = np.zeros((NUM_CLASSES, DIM, DIM))
    norm = np.zeros(NUM_CLASSES)
    ref = np.zeros(NUM_CLASSES)
    scale = np.zeros(NUM_CLASSES)
    for c in range(NUM_CLASSES):
        idx = np.nonzero(y == c)[0]
        table[c, :idx.size] = idx
        xc = x[idx].astype(np.float64)
        means[c] = xc.mean(0)
        cov = np.cov(xc, rowvar=False) + COV_SHRINK * np.eye(DIM)
        prec = np.linalg.inv(cov)
        prec_chol[c] = np.linalg.cholesky(prec)
        norm[c] = -0.5 * np.linalg.slogdet(cov)[1] - 0.5 * DIM * np.log(2 * np.pi)
        z = (xc - means[c]) @ prec_chol[c]
        ll = norm[c] - 0.5 * np.sum(z**2, -1)
        ref[c], scale[c] = np.median(ll), ll.std()
    # LDA: log p(c | x) = x' P m_c - m_c' P m_c / 2 + log pi_c + const (P the shared precision); closed
    # form, so fitting costs one 64x64 inverse instead of an iterative logistic-regression solve
    pooled = sum(np.cov(xd[y == c], rowvar=False) * (counts[c] - 1) for c in range(NUM_CLASSES))
    shared_prec = np.linalg.inv(pooled / (len(y) - NUM_CLASSES) + COV_SHRINK * np.eye(DIM))
    w = shared_prec @ means.T
    b = -0.5 * np.sum(means.T * w, 0) + np.log(counts / counts.sum())
    f32 = lambda a: a.astype(np.float32)
    train_acc = float(np.mean(np.argmax(xd @ w + b, -1) == y))
    return {"w": f32(w), "b": f32(b), "counts": counts.astype(np.int32),
            "table": table, "means": f32(means), "prec_chol": f32(prec_chol), "norm": f32(norm),
            "ref": f32(ref), "scale": f32(scale), "train_acc": train_acc}


@functools.lru_cache(maxsize=1)
def eval_classifier():
    """An RBF SVM fitted on all 1,797 images (the acceptance check's independent classifier)."""
    from sklearn.svm import SVC

    x, y = load_data()
    return SVC(C=10.0, gamma="scale").fit(x.astype(np.float64), y)


def class_accuracy(x: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """Per-class fraction of samples x (N, 64) that the SVM classifies as their prompt; (10,)."""
    pred = eval_classifier().predict(np.asarray(x, np.float64))
    prompts = np.asarray(prompts)
    return np.array([np.mean(pred[prompts == c] == c) if np.any(prompts == c) else np.nan
                     for c in range(NUM_CLASSES)])


@dataclasses.dataclass(frozen=True, eq=False)
class DigitsTask:
    """The digits task with the same interface as :class:`quietrl.precise.env.MixtureTask`."""

    num_prompts: int = NUM_CLASSES
    dim: int = DIM

    def _p(self, name):
        return jnp.asarray(_fitted()[name])

    def sample(self, key, prompts):
        """Training images x0 (N, 64) of the prompted classes (N,), uniformly within each class."""
        counts = self._p("counts")[prompts]
        u = jax.random.uniform(key, prompts.shape)
        j = jnp.minimum((u * counts).astype(jnp.int32), counts - 1)
        return jnp.asarray(load_data()[0])[self._p("table")[prompts, j]]

    def logits(self, x):
        """Reward classifier logits (N, 10)."""
        return x @ self._p("w") + self._p("b")

    def log_density(self, x, prompts):
        """Per-class Gaussian log-likelihood log N(x; m_c, S_c): (N, 64), (N,) -> (N,)."""
        # every class's whitened residual, then the prompted one: gathering a (64, 64) factor per sample
        # instead makes XLA constant-fold an (N, 64, 64) array when the prompts are constants (slow compile)
        z = jnp.einsum("ncd,cde->nce", x[:, None, :] - self._p("means")[None], self._p("prec_chol"))
        ll = self._p("norm")[None] - 0.5 * jnp.sum(z**2, -1)  # (N, 10)
        return jnp.take_along_axis(ll, prompts[:, None], -1)[:, 0]

    def reward_parts(self, x, prompts):
        """(pref, q), each (N,): clipped log p_clf(c | x) and the data-likelihood quality term in [-1, 0]."""
        logp = jax.nn.log_softmax(self.logits(x), -1)
        pref = jnp.maximum(jnp.take_along_axis(logp, prompts[:, None], -1)[:, 0], PREF_FLOOR)
        ll = self.log_density(x, prompts)
        q = jnp.clip((ll - self._p("ref")[prompts]) / (Q_WIDTH * self._p("scale")[prompts]), -1.0, 0.0)
        return pref, q

    def reward(self, x, prompts, lam: float = 1.0):
        """r = pref + lam * q, shape (N,)."""
        pref, q = self.reward_parts(x, prompts)
        return pref + lam * q

    def mode_weights(self, x, prompts):
        """(N, 10) one-hot of the reward classifier's predicted class (class entropy per prompt)."""
        del prompts
        return jax.nn.one_hot(jnp.argmax(self.logits(x), -1), NUM_CLASSES)
