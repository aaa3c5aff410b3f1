"""The stateless environment API and the Gymnasium-style wrapper."""

from __future__ import annotations

import pytest

from quietrl.core.errors import UserError
from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.env import (
    CLOSED,
    TRACE,
    Confirmer,
    ProofEnv,
    check_proof,
    initial_state,
    legal_methods,
    state_from_json,
    state_key,
    state_to_json,
    step,
)
from quietrl.proofsearch.prover import ProofNode, prove


@pytest.fixture(scope="module")
def theory():
    return parse_file(example_path("client_server"))


def test_unknown_lemma_is_a_user_error(theory):
    with pytest.raises(UserError, match="unknown lemma 'nope'.*key_secret"):
        initial_state(theory, "nope")


def test_states_serialise_and_hash(theory):
    s0 = initial_state(theory, "key_secret")
    ((_, s1),) = [(c.name, c.state) for c in step(s0, legal_methods(s0)[0], Confirmer(theory, theory.lemma("key_secret")))]
    assert state_key(s1) != state_key(s0)
    back = state_from_json(theory, state_to_json(s1))  # the canonical representative: same methods, renamed
    assert state_key(back) == state_key(s1)
    assert len(legal_methods(back)) == len(legal_methods(s1)) > 0
    other = parse_file(example_path("signed_key_exchange"))
    with pytest.raises(UserError, match="another theory"):
        state_from_json(other, state_to_json(s1))


def test_gym_wrapper_greedy_episode_equals_greedy_prover(theory):
    env = ProofEnv(theory, "key_secret")
    obs, info = env.reset()
    total, done, n = 0.0, False, 0
    while not done:
        obs, r, term, trunc, info = env.step(0)
        total += r
        n += 1
        done = term or trunc
    assert term and not trunc and info["open_cases"] == 0
    greedy = prove(theory, theory.lemma("key_secret"), 200)
    assert -total == n == greedy.tree.method_count()
    with pytest.raises(UserError, match="reset"):
        env.step(0)


def test_gym_wrapper_trace_terminates_and_bad_action(theory):
    env = ProofEnv(theory, "setup_reachable")
    env.reset()
    with pytest.raises(UserError, match="out of range"):
        env.step(99)
    info = {}
    for _ in range(50):
        _, _, term, trunc, info = env.step(0)
        if term or trunc:
            break
    assert term and info.get("trace")


def test_check_proof_rejects_a_wrong_tree(theory):
    lem = theory.lemma("key_secret")
    good = prove(theory, lem, 200).tree
    assert check_proof(theory, lem, good).ok
    bad = ProofNode(good.state, method=good.method, cases=[(name, ProofNode(c.state, leaf="contradiction"))
                                                           for name, c in good.cases])
    rep = check_proof(theory, lem, bad)
    assert not rep.ok and rep.problems
    assert CLOSED != TRACE
