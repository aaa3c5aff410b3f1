"""Canonical state JSON: invariant under variable renaming, exact round trips, theory fingerprints."""

from __future__ import annotations

import dataclasses
import json

import pytest

from quietrl.core.errors import UserError
from quietrl.proofsearch import apply, example_path, initial_system, methods, parse_file, parse_theory
from quietrl.proofsearch.canonical import _rebuild, canonical_state, state_from_json, state_key, state_to_json
from quietrl.proofsearch.types import Var


@pytest.fixture(scope="module")
def theory():
    return parse_file(example_path("client_server"))


@pytest.fixture(scope="module")
def states(theory):
    """Every system of the first three levels of the greedy tree of ``client_auth`` (root included)."""
    out = [initial_system(theory, theory.lemma("client_auth"))]
    frontier = list(out)
    for _ in range(3):
        nxt = []
        for st in frontier:
            ms = methods(st)
            if ms:
                nxt += [s for _, s in apply(st, ms[0])]
        out += nxt
        frontier = nxt
    assert len(out) >= 5  # the fixture really walks into the tree
    return out


def _renamed(state, suffix="_r", shift=7):
    """An alpha-equivalent copy: every variable gets another base name and another index."""
    return _rebuild(state, lambda v: Var(v.name + suffix, v.idx + shift, v.sort))


def test_alpha_equivalent_states_give_identical_text_and_key(states):
    for st in states:
        other = _renamed(st)
        if st.constraints.nodes or st.constraints.goals:
            assert other != st  # the renaming really changed something
        assert state_to_json(other) == state_to_json(st)
        assert state_key(other) == state_key(st)


def test_text_is_canonical_json_with_fingerprint_and_lemma(states):
    text = state_to_json(states[-1])
    doc = json.loads(text)
    assert doc["theory"] == states[-1].theory_fingerprint and doc["lemma"] == "client_auth"
    assert text == json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    names = {w for w in text.split('"') if w.startswith("v") and w[1:].isdigit()}
    assert names and "vk" not in text.replace('"vk"', "")  # variables carry canonical names only


def test_different_states_get_different_keys(states):
    keys = {state_key(st) for st in states}
    distinct = {state_to_json(canonical_state(st), canonical=False) for st in states}
    assert len(keys) == len(distinct) > 3


def test_renamed_terms_hash_as_freshly_built_ones(states):
    """A renamed copy must not keep the old terms' hash memos: equal terms hash equally, so the renamed
    system's terms are found in sets and dicts built from fresh terms; the variable-name memo starts afresh."""
    from quietrl.proofsearch.types import App

    def apps(x, out):
        if isinstance(x, App):
            out.append(x)
            for a in x.args:
                apps(a, out)
        elif isinstance(x, (tuple, list, frozenset)):
            for y in x:
                apps(y, out)
        elif isinstance(x, dict):
            for k, v in x.items():
                apps(k, out)
                apps(v, out)
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            for f in dataclasses.fields(x):
                if f.compare:
                    apps(getattr(x, f.name), out)
        return out

    checked = 0
    for st in states:
        for t in apps(st, []):
            hash(t)  # fill the memo of the original term
        canon = canonical_state(st)
        for t in apps(canon, []):
            fresh = App(t.fun, t.args)
            assert t == fresh and hash(t) == hash(fresh) and t in {fresh}
            checked += 1
        assert canon.constraints._used is None or canon.constraints._used is not st.constraints._used
    assert checked > 20


def test_exact_round_trip_keeps_names_and_behaviour(theory, states):
    for st in states:
        back = state_from_json(theory, state_to_json(st, canonical=False))
        assert back == st and back.theory is theory
        assert methods(back) == methods(st)


def test_canonical_round_trip_behaves_the_same_up_to_renaming(theory, states):
    for st in states:
        back = state_from_json(theory, state_to_json(st))
        assert state_key(back) == state_key(st)
        assert [m.kind for m in methods(back)] == [m.kind for m in methods(st)]
        if methods(st):
            mine = apply(st, methods(st)[0])
            theirs = apply(back, methods(back)[0])
            assert [n for n, _ in theirs] == [n for n, _ in mine]
            assert [state_key(s) for _, s in theirs] == [state_key(s) for _, s in mine]


def test_another_theory_is_refused(theory, states):
    other = parse_theory(open(example_path("client_server")).read().replace("'hello'", "'bye'"))
    with pytest.raises(UserError, match="another theory"):
        state_from_json(other, state_to_json(states[0]))


@pytest.mark.parametrize("text, what", [("{", "not JSON"), ('{"format": "x"}', "not a serialised"),
                                        ("[1, 2]", "not a serialised")])
def test_malformed_text_is_a_user_error(theory, text, what):
    with pytest.raises(UserError, match=what):
        state_from_json(theory, text)


def test_unknown_lemma_is_a_user_error(theory, states):
    doc = json.loads(state_to_json(states[0]))
    doc["lemma"] = "nope"
    with pytest.raises(UserError, match="no lemma 'nope'"):
        state_from_json(theory, json.dumps(doc))
