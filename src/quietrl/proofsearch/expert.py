"""Online expert iteration: the ranker learns from every completed subproof while MCTS runs (spec section 17).

Whenever an OR node of the search becomes settled (closed or a trace found below it), it yields one
example: the texts of its ranked methods, the index of the method of its smallest settled proof and a
value target from the proof alone (terminal 1, each step −1: ``1 − steps`` of the subproof, matching the
search's ``sum`` back-up, or of its longest branch as the authors' ``min``).
Examples enter a FIFO replay buffer at once; the learner samples it with weight ``1/(1 + uses)`` and pauses
once every sample has been used ``max_uses`` times. The first ``monitor`` examples are held out as a
monitor set. Loss: cross-entropy on the chosen index + value MSE, equal weights; Adam with global-norm
clipping. Training happens during the search (every ``train_every`` new examples) and between searches.

Per theory (as the paper): random init, every lemma in file order, one learner. Leave-one-family-out:
:func:`train_on` over other theories' lemmas, then search the held-out ones with the learnt parameters.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from quietrl.core.errors import ConfigError
from quietrl.proofsearch.mcts import MCTSConfig, MCTSResult, OrNode, chosen_index, proof_value, search_lemma
from quietrl.proofsearch.networks import NetConfig, Ranker, init_params
from quietrl.proofsearch.tokenizer import GOALLESS, encode_methods
from quietrl.proofsearch.types import Theory

VALUE_FLOOR = -30.0  # value targets are clipped here: a few very long proofs must not dominate the MSE


@dataclasses.dataclass(frozen=True)
class ExpertConfig:
    """Learner settings (paper: Adam 1e-4, clip 1.0, batch 32, FIFO 10 000, 10 uses, 64 monitor samples;
    ours: a larger step size, batch 16 and 16 monitor samples, since a CPU run sees few examples)."""

    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    batch_size: int = 16
    capacity: int = 10_000
    max_uses: int = 10
    monitor: int = 16
    train_every: int = 16          # new examples between in-search training bursts
    updates_per_burst: int = 8
    updates_between_searches: int = 32
    seed: int = 42
    value_target: str = "sum"      # "sum": 1 − steps of the subproof (our AND back-up); "min": longest branch
    # λ of a rank prior the policy is trained on top of: the loss sees logits − λ·rank, so with λ equal to
    # MCTSConfig.rank_lambda (which the search adds to the logits) the network learns only the residual of
    # the engine's ranking instead of the whole choice. 0: the network learns the whole choice and the
    # search adds the rank prior once more (in the benchmark's learners most chosen methods are the engine's
    # first: NSLPK3 249 of 298 examples, NSPK3 247 of 293, TLS 109 of 261, so a trained network repeats the
    # ranking and the prior counts it twice). The greedy oracle ranks by logits − λ·rank as well. Measured
    # with the benchmark (6x budget, seeds 0-2, λ = 0.5 against 0, geometric means over the records):
    # executions to the first proof MCTS + net / MCTS 1.141 against 1.094, size / s where s needs >= 30
    # steps 0.712 against 0.692, 5 acceptance exceptions against 4 (KAS2 seed 2 missed). Worse, so off.
    rank_prior: float = 0.0
    # "simplify" and "induction" carry no goal: the policy reads the same two texts at every lemma's root, so
    # its logits there are a bias learnt from the theory's earlier lemmas, not a judgement of this lemma (seen
    # on the benchmark's trained rankers: simplify − induction from −3.4 to +2.8 by seed on one theory). True:
    # those methods share the mean of their logits, so the engine's rank alone orders them. Measured with the
    # benchmark (6x budget, 3 seeds, against False): over the 198 records first proofs MCTS + net / MCTS 1.075
    # against 1.094 and size / s where s needs >= 30 steps 0.677 against 0.692, but the benchmark's figures
    # (median per lemma) 1.102 against 1.073 and 0.699 against 0.679, and KAS2 missed on seed 1 (5 acceptance
    # exceptions against 4): within the seeds' noise, hence off
    tie_goalless: bool = False

    def __post_init__(self) -> None:
        if self.value_target not in ("sum", "min"):
            raise ConfigError(f"ExpertConfig.value_target must be sum or min, got {self.value_target!r}")
        if self.rank_prior < 0:
            raise ConfigError(f"ExpertConfig.rank_prior must be >= 0, got {self.rank_prior}")
        if self.learning_rate <= 0:
            raise ConfigError(f"ExpertConfig.learning_rate must be > 0, got {self.learning_rate}")
        for name in ("batch_size", "capacity", "max_uses", "train_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ExpertConfig.{name} must be >= 1")
        for name in ("monitor", "updates_per_burst", "updates_between_searches"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ExpertConfig.{name} must be >= 0")


@dataclasses.dataclass
class Example:
    """One training example: a state's encoded methods, the expert's choice and the value target."""

    ids: np.ndarray       # [M, L] int32
    mask: np.ndarray      # [M] bool
    chosen: int
    target: float
    uses: int = 0


class ReplayBuffer:
    """FIFO replay with usage-weighted sampling (weight ``1/(1 + uses)``) and a held-out monitor set."""

    def __init__(self, capacity: int, monitor: int = 0, seed: int = 0):
        if capacity < 1:
            raise ConfigError("ReplayBuffer capacity must be >= 1")
        self.capacity, self.monitor_size = capacity, monitor
        self.items: list[Example] = []
        self.monitor: list[Example] = []
        self.rng = np.random.default_rng(seed)
        self.added = 0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, ex: Example) -> None:
        self.added += 1
        if len(self.monitor) < self.monitor_size:
            self.monitor.append(ex)
            return
        self.items.append(ex)
        if len(self.items) > self.capacity:
            self.items.pop(0)  # FIFO

    def exhausted(self, max_uses: int) -> bool:
        """True when empty or when every sample has been used at least ``max_uses`` times."""
        return not self.items or min(e.uses for e in self.items) >= max_uses

    def weights(self) -> np.ndarray:
        w = np.array([1.0 / (1.0 + e.uses) for e in self.items])
        return w / w.sum()

    def sample(self, batch_size: int) -> list[Example]:
        """Up to ``batch_size`` distinct examples drawn with probability ∝ 1/(1 + uses); their uses += 1."""
        n = min(batch_size, len(self.items))
        idx = self.rng.choice(len(self.items), size=n, replace=False, p=self.weights())
        out = [self.items[i] for i in idx]
        for e in out:
            e.uses += 1
        return out


def _stack(batch: list[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    m = max(e.ids.shape[0] for e in batch)
    L = max(e.ids.shape[1] for e in batch)
    ids = np.zeros((len(batch), m, L), np.int32)
    mask = np.zeros((len(batch), m), bool)
    for i, e in enumerate(batch):
        ids[i, : e.ids.shape[0], : e.ids.shape[1]] = e.ids
        mask[i, : e.mask.shape[0]] = e.mask
    chosen = np.array([e.chosen for e in batch], np.int32)
    target = np.array([e.target for e in batch], np.float32)
    return ids, mask, chosen, target


class Learner:
    """The ranker's parameters, optimiser and jitted train/predict steps; also the MCTS evaluator."""

    def __init__(self, net: NetConfig = NetConfig(), cfg: ExpertConfig = ExpertConfig(), params=None):
        self.net, self.cfg = net, cfg
        self.model = Ranker(net)
        self.params = params if params is not None else init_params(net, cfg.seed)
        self.tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), optax.adam(cfg.learning_rate))
        self.opt_state = self.tx.init(self.params)
        self.buffer = ReplayBuffer(cfg.capacity, cfg.monitor, cfg.seed)
        self.updates = 0
        self.losses: list[float] = []
        self.forward_calls = 0
        self._since_train = 0
        self.seen_examples: set = set()  # (state key, chosen method, value target) of the examples added
        model, tx = self.model, self.tx
        rank_prior = float(cfg.rank_prior)

        def loss_fn(params, ids, mask, chosen, target):
            logits, value = model.apply(params, ids, mask)
            if rank_prior:
                logits = logits - rank_prior * jnp.arange(logits.shape[-1], dtype=logits.dtype)
            logp = jax.nn.log_softmax(logits, axis=-1)
            ce = -jnp.take_along_axis(logp, chosen[:, None], axis=1)[:, 0]
            return jnp.mean(ce) + jnp.mean((value - target) ** 2), (jnp.mean(ce), jnp.mean((value - target) ** 2))

        @jax.jit
        def train_step(params, opt_state, ids, mask, chosen, target):
            (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, ids, mask, chosen, target)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss, parts

        self._train_step = train_step
        self._loss = jax.jit(loss_fn)
        self._predict = jax.jit(model.apply)

    # -- inference

    def predict_texts(self, texts: list[str]) -> tuple[np.ndarray, float]:
        """Policy logits ``[len(texts)]`` and value for one state's ranked method texts."""
        ids, mask = encode_methods(texts, self.net.vocab_size, self.net.max_len, self.net.max_methods)
        logits, value = self._predict(self.params, ids[None], mask[None])
        self.forward_calls += 1
        logits = np.asarray(logits[0, : min(len(texts), ids.shape[0])], np.float64)
        if len(texts) > len(logits):  # methods past the encoder's cap: ranked after the rest, in order
            tail = logits.min() - 5.0 - np.arange(len(texts) - len(logits))
            logits = np.concatenate([logits, tail])
        if self.cfg.tie_goalless:
            free = [i for i, t in enumerate(texts) if t in GOALLESS]
            if len(free) > 1:
                logits[free] = logits[free].mean()
        return logits, float(value[0])

    def rank_logits(self, texts: list[str]) -> np.ndarray:
        """Scores of methods given in the engine's rank order, best highest: the policy logits with the rank
        prior the policy was trained on top of (``ExpertConfig.rank_prior``); what a greedy oracle sorts."""
        logits, _ = self.predict_texts(texts)
        return logits - self.cfg.rank_prior * np.arange(len(logits))

    def evaluate(self, state, methods) -> tuple[np.ndarray, float]:
        """The MCTS evaluator: ``(logits [k], value)`` for a system and its ranked methods."""
        return self.predict_texts([m.text() for m in methods])

    # -- learning

    def listener(self, node: OrNode) -> None:
        """MCTS listener: one example per newly settled non-terminal OR node, training every few."""
        if not node.expanded or not node.methods:
            return
        i = chosen_index(node)
        v = proof_value(node, self.cfg.value_target)
        if i is None or v is None:
            return
        seen = (node.key, i, v)
        if seen in self.seen_examples:
            return  # a subproof re-found by a later search (cached steps) is not a new example
        self.seen_examples.add(seen)
        texts = [m.text() for m in node.methods]
        ids, mask = encode_methods(texts, self.net.vocab_size, self.net.max_len, self.net.max_methods)
        if i >= ids.shape[0]:
            return  # the choice is past the encoder's cap: nothing the policy could point at
        self.buffer.add(Example(ids, mask, i, max(VALUE_FLOOR, v)))
        self._since_train += 1
        if self._since_train >= self.cfg.train_every:
            self._since_train = 0
            self.train(self.cfg.updates_per_burst)

    def train(self, updates: int) -> int:
        """Up to ``updates`` gradient steps on usage-weighted batches; stops when the buffer is used up."""
        done = 0
        for _ in range(updates):
            # full batches only: one compiled shape per method bucket
            if len(self.buffer) < self.cfg.batch_size or self.buffer.exhausted(self.cfg.max_uses):
                break
            ids, mask, chosen, target = _stack(self.buffer.sample(self.cfg.batch_size))
            self.params, self.opt_state, loss, _ = self._train_step(self.params, self.opt_state, ids, mask,
                                                                    chosen, target)
            self.losses.append(float(loss))
            self.updates += 1
            done += 1
        return done

    def warmup(self) -> float:
        """Compile inference and the train step for every method bucket (seconds spent); search budgets
        then measure search and learning, not XLA compilation."""
        from quietrl.proofsearch.tokenizer import METHOD_BUCKETS

        t0 = time.perf_counter()
        L = self.net.max_len
        for m in [b for b in METHOD_BUCKETS if b <= self.net.max_methods]:
            ids = np.zeros((1, m, L), np.int32)
            mask = np.zeros((1, m), bool)
            mask[0, 0] = True
            jax.block_until_ready(self._predict(self.params, ids, mask))
            b = self.cfg.batch_size
            # one step on dummy data whose result is dropped: compiles into jit's cache, parameters unchanged
            jax.block_until_ready(self._train_step(self.params, self.opt_state, np.zeros((b, m, L), np.int32),
                                                   np.ones((b, m), bool), np.zeros(b, np.int32),
                                                   np.zeros(b, np.float32)))
        return time.perf_counter() - t0

    def monitor_loss(self) -> float | None:
        """Loss on the held-out monitor examples (None until there are some)."""
        if not self.buffer.monitor:
            return None
        ids, mask, chosen, target = _stack(self.buffer.monitor)
        return float(self._loss(self.params, ids, mask, chosen, target)[0])


def search_with_learning(theory: Theory, lemma: str, learner: Learner, mcts: MCTSConfig, seed: int = 0,
                         deadline: float | None = None, learn: bool = True,
                         clock: Callable[[], float] = time.perf_counter) -> MCTSResult:
    """MCTS + network on one lemma; with ``learn`` the learner trains online from the search's subproofs."""
    def between(_: int) -> None:
        learner.train(learner.cfg.updates_between_searches)

    return search_lemma(theory, lemma, mcts, evaluator=learner.evaluate,
                        listener=learner.listener if learn else None, seed=seed, deadline=deadline, clock=clock,
                        on_search=between if learn else None)


def train_online(theory: Theory, lemmas: list[str], mcts: MCTSConfig, learner: Learner | None = None,
                 seed: int = 0, per_lemma_s: float | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None) -> tuple[Learner, list[MCTSResult]]:
    """The paper's protocol on one theory: one learner (random init unless given), lemmas in order."""
    learner = learner or Learner()
    results = []
    for lem in lemmas:
        deadline = None if per_lemma_s is None else time.perf_counter() + per_lemma_s
        r = search_with_learning(theory, lem, learner, mcts, seed, deadline)
        results.append(r)
        if log is not None:
            log({"lemma": lem, "verdict": r.verdict, "size": r.size, "executions": r.executions,
                 "examples": learner.buffer.added, "updates": learner.updates,
                 "loss": learner.losses[-1] if learner.losses else None})
    return learner, results


def train_on(problems: list[tuple[Theory, str]], mcts: MCTSConfig, learner: Learner | None = None,
             seed: int = 0) -> Learner:
    """Expert iteration over (theory, lemma) pairs of several theories (leave-one-family-out training)."""
    learner = learner or Learner()
    for theory, lem in problems:
        search_with_learning(theory, lem, learner, mcts, seed)
    learner.train(learner.cfg.updates_between_searches)
    return learner
