"""Tokenizer, the ranker's heads on variable method counts, the replay buffer and online learning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from quietrl.core.errors import ConfigError
from quietrl.proofsearch.expert import Example, ExpertConfig, Learner, ReplayBuffer
from quietrl.proofsearch.networks import NetConfig, Ranker, init_params
from quietrl.proofsearch.tokenizer import EOS, KIND_IDS, SEP, encode_methods, goal_kind, tokenize

GOALS = ["solve( !KU( aenc(<'1', ~k>, pk(~ltkS)) ) @ #vk.1 )", "simplify", "solve( Client_1( S, k ) ▶₀ #i )",
         "solve( (#i < #j)  ∥ (#j < #i) )", "induction", "solve( Reg( ~x.3, $A ) @ #t )"]


def test_tokenizer_renames_variables_and_tolerates_anything():
    a = tokenize("solve( !KU( h(~k.4) ) @ #vk.1 )")
    b = tokenize("solve( !KU( h(~n) ) @ #j )")
    assert a == b  # same goal up to variable names and index suffixes
    assert a[:2] == [KIND_IDS["ku"], SEP] and a[-1] == EOS
    assert tokenize("solve( !KU( h(~k) ) @ #vk )") != tokenize("solve( !KU( sha(~k) ) @ #vk )")
    assert goal_kind(GOALS[2]) == "premise" and goal_kind(GOALS[3]) == "disjunction"
    weird = tokenize("solve( ΩΩ ⊕ unknown_symbol_xyz( 'zz' ) )", vocab_size=300)
    assert all(0 <= t < 300 for t in weird)
    ids, mask = encode_methods(GOALS, max_len=48)
    assert ids.shape == (8, 48) and mask.tolist() == [True] * 6 + [False] * 2


@pytest.fixture(scope="module")
def net():
    cfg = NetConfig()  # random heads (the default): the set properties below are not trivially met
    return cfg, jax.jit(Ranker(cfg).apply), init_params(cfg, 0)


def test_untrained_ranker_leaves_the_engine_order():
    cfg = NetConfig(zero_init_heads=True)  # equal logits (the prior is the engine's rank alone), value 0
    ids, mask = encode_methods(GOALS, cfg.vocab_size, cfg.max_len)
    logits, value = jax.jit(Ranker(cfg).apply)(init_params(cfg, 3), jnp.asarray(ids)[None], jnp.asarray(mask)[None])
    assert np.all(np.asarray(logits[0, :6]) == 0.0) and np.all(np.asarray(logits[0, 6:]) < -1e8)
    assert float(value[0]) == 0.0


def test_policy_head_on_variable_method_counts(net):
    cfg, model, params = net
    ids, mask = encode_methods(GOALS, cfg.vocab_size, cfg.max_len)
    logits, value = model(params, jnp.asarray(ids)[None], jnp.asarray(mask)[None])
    assert logits.shape == (1, 8) and value.shape == (1,)
    assert np.all(np.asarray(logits[0, 6:]) < -1e8)  # padded methods can never be chosen
    # a set: permuting the methods permutes the logits and leaves the value unchanged
    perm = [3, 0, 5, 1, 4, 2]
    ids2, mask2 = encode_methods([GOALS[i] for i in perm], cfg.vocab_size, cfg.max_len)
    logits2, value2 = model(params, jnp.asarray(ids2)[None], jnp.asarray(mask2)[None])
    np.testing.assert_allclose(np.asarray(logits2[0, :6]), np.asarray(logits[0, :6])[perm], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(value2[0]), float(value[0]), rtol=1e-4, atol=1e-5)
    # more padding does not change anything
    big = np.zeros((64, 48), np.int32)
    big[:8] = ids
    bmask = np.zeros(64, bool)
    bmask[:8] = mask
    logits3, _ = model(params, jnp.asarray(big)[None], jnp.asarray(bmask)[None])
    np.testing.assert_allclose(np.asarray(logits3[0, :6]), np.asarray(logits[0, :6]), rtol=1e-4, atol=1e-5)
    for k in (1, 2, 7):
        ids_k, mask_k = encode_methods((GOALS * 2)[:k], cfg.vocab_size, cfg.max_len)
        lk, _ = model(params, jnp.asarray(ids_k)[None], jnp.asarray(mask_k)[None])
        assert np.isfinite(np.asarray(lk[0, :k])).all() and int((np.asarray(lk[0]) > -1e8).sum()) == k


def test_methods_past_the_encoder_cap_are_ranked_last_in_engine_order():
    """The encoder sees at most max_methods methods: the rest get logits below every encoded one, decreasing in
    the engine's order, and the encoded ones score as they would alone."""
    learner = Learner(NetConfig(max_methods=4), ExpertConfig())
    logits, value = learner.predict_texts(GOALS)
    head, head_value = learner.predict_texts(GOALS[:4])
    assert logits.shape == (6,) and np.isfinite(logits).all()
    np.testing.assert_allclose(logits[:4], head, rtol=1e-5, atol=1e-6)
    assert value == pytest.approx(head_value, abs=1e-6)
    assert logits[4] < logits[:4].min() and logits[5] < logits[4]
    assert list(np.argsort(-logits)[4:]) == [4, 5]


def _ex(i: int) -> Example:
    return Example(np.full((8, 48), i % 50 + 100, np.int32), np.ones(8, bool), i % 3, -float(i % 5))


def test_replay_buffer_fifo_monitor_and_usage_weighting():
    buf = ReplayBuffer(capacity=5, monitor=2, seed=0)
    for i in range(9):
        buf.add(_ex(i))
    assert len(buf.monitor) == 2 and len(buf) == 5
    assert [e.target for e in buf.items] == [-float(i % 5) for i in range(4, 9)]  # the oldest dropped
    buf.items[0].uses = 3
    w = buf.weights()
    assert w[0] == pytest.approx(w[1] / 4)  # 1/(1+3) against 1/(1+0)
    # sampling favours little-used examples: over many draws the counts equalise
    buf2 = ReplayBuffer(capacity=10, seed=1)
    for i in range(10):
        buf2.add(_ex(i))
    buf2.items[0].uses = 50
    for _ in range(40):
        buf2.sample(3)
    uses = [e.uses for e in buf2.items]
    assert uses[0] < 60 and max(uses[1:]) - min(uses[1:]) <= 8 and min(uses[1:]) >= 8
    assert not buf2.exhausted(5) or min(uses) >= 5
    assert buf2.exhausted(1) is (min(uses) >= 1)
    with pytest.raises(ConfigError):
        ReplayBuffer(0)


def test_learner_fits_a_choice_and_pauses_when_used_up():
    learner = Learner(NetConfig(), ExpertConfig(batch_size=4, monitor=0, max_uses=30, learning_rate=3e-3))
    ids, mask = encode_methods(GOALS[:4], 2048, 48)
    for _ in range(4):
        learner.buffer.add(Example(ids, mask, 2, -2.0))
    before, _ = learner.predict_texts(GOALS[:4])
    assert learner.train(100) == 30  # every example used 30 times: updates pause
    after, value = learner.predict_texts(GOALS[:4])
    assert np.argmax(after) == 2 and after[2] - np.max(np.delete(after, 2)) > before[2] - np.max(np.delete(before, 2))
    assert abs(value - (-2.0)) < 1.0
    with pytest.raises(ConfigError):
        ExpertConfig(learning_rate=0)


def test_a_subproof_re_found_by_a_later_search_is_not_a_new_example():
    from quietrl.proofsearch import example_path, parse_file
    from quietrl.proofsearch.expert import search_with_learning
    from quietrl.proofsearch.mcts import MCTSConfig

    theory = parse_file(example_path("client_server"))
    sizes = []
    for searches in (1, 3):
        learner = Learner(NetConfig(), ExpertConfig(monitor=0))
        r = search_with_learning(theory, "key_secret", learner,
                                 MCTSConfig(simulations=30, searches=searches, proofs=searches, max_executions=200,
                                            improve=False))
        assert r.proofs_found == searches  # the later searches re-find the same proof (cached steps)
        sizes.append(len(learner.buffer))
    assert sizes[0] > 0 and sizes[1] == sizes[0]


def test_policy_trained_on_top_of_the_rank_prior():
    # ExpertConfig.rank_prior = λ: the loss scores log_softmax(logits − λ·rank), as the search composes its
    # prior, and the greedy oracle sorts the same scores; λ = 0 is the plain policy.
    ids, mask = encode_methods(GOALS[:4], 2048, 48)
    plain = Learner(NetConfig(), ExpertConfig(monitor=0))
    resid = Learner(NetConfig(), ExpertConfig(monitor=0, rank_prior=0.5), params=plain.params)
    z, _ = plain.predict_texts(GOALS[:4])
    for learner, lam in ((plain, 0.0), (resid, 0.5)):
        s = z - lam * np.arange(4)
        want = -s[1] + np.log(np.sum(np.exp(s)))  # cross-entropy of choosing the second method
        _, (ce, _) = learner._loss(learner.params, ids[None], mask[None], np.array([1]), np.zeros(1, np.float32))
        assert abs(float(ce) - want) < 1e-4
    assert np.allclose(resid.rank_logits(GOALS[:4]), z - 0.5 * np.arange(4), atol=1e-6)
    assert np.allclose(plain.rank_logits(GOALS[:4]), z, atol=1e-6)
    with pytest.raises(ConfigError):
        ExpertConfig(rank_prior=-1.0)


def test_goalless_methods_share_their_logit_so_the_rank_orders_them():
    # a ranker trained to prefer simplify at a root: that preference is the same at every lemma (the two texts
    # never change), so with tie_goalless both get their mean logit; goals keep theirs
    root = ["induction", "simplify"]
    ids, mask = encode_methods(root, 2048, 48)
    free = Learner(NetConfig(), ExpertConfig(batch_size=4, monitor=0, learning_rate=3e-3))  # the default
    for _ in range(4):
        free.buffer.add(Example(ids, mask, 1, 0.0))
    free.train(30)
    tied = Learner(NetConfig(), ExpertConfig(monitor=0, tie_goalless=True), params=free.params)
    z_free, _ = free.predict_texts(root)
    z_tied, _ = tied.predict_texts(root)
    assert z_free[1] - z_free[0] > 0.5
    assert z_tied[0] == z_tied[1] and abs(z_tied[0] - z_free.mean()) < 1e-9
    mixed = ["simplify", GOALS[0], "induction"]
    m_free, _ = free.predict_texts(mixed)
    m_tied, _ = tied.predict_texts(mixed)
    assert m_tied[1] == m_free[1] and m_tied[0] == m_tied[2] != m_free[0]
