"""Attacks through refined sources: Lowe's man-in-the-middle on Needham-Schroeder (our example models and
Tamarin's NSPK3), every bundled mutant falsified with a replayed trace, and Lowe's fix verified."""

from __future__ import annotations

from quietrl.proofsearch import example_names, example_path, parse_file
from quietrl.proofsearch.prover import FOUND_TRACE, VERIFIED, prove_all
from quietrl.proofsearch.render import trace_text
from quietrl.proofsearch.replay import holds, replay


def _lowe_attack_checks(th, r):
    assert r.verdict == FOUND_TRACE
    trace = list(r.trace)
    assert replay(th, trace).ok
    assert not holds(th, trace, th.lemma(r.lemma).formula)
    return [s.rule for s in trace]


def test_mutant_without_responder_id_has_lowes_attack():
    th = parse_file(example_path("mutant_nslpk_no_responder_id"))
    got = {r.lemma: r for r in prove_all(th, ["types", "responder_nonce_secret"], max_steps=200)}
    assert got["types"].verdict == VERIFIED  # the typing lemma the refined sources rest on
    rules = _lowe_attack_checks(th, got["responder_nonce_secret"])
    # The man in the middle: two initiator runs' worth of messages, the responder finishing, a revealed key.
    assert "Reveal" in rules and "Resp_2" in rules and rules.count("Init_2") >= 1


def test_lowes_fix_is_verified():
    th = parse_file(example_path("nslpk"))
    (r,) = prove_all(th, ["responder_nonce_secret"], max_steps=200)
    assert r.verdict == VERIFIED and r.assumes == ()


def test_every_bundled_mutant_is_falsified():
    for name in example_names():
        if not name.startswith("mutant_"):
            continue
        th = parse_file(example_path(name))
        results = prove_all(th, max_steps=400)
        assert any(r.verdict == FOUND_TRACE for r in results), name
        for r in results:
            if r.verdict == FOUND_TRACE:
                assert replay(th, list(r.trace)).ok, (name, r.lemma)


def test_nspk3_lowe_attack(protocols):  # an acceptance line of the engine's issue: in the default run (~15 s)
    th = parse_file(protocols / "classic" / "NSPK3.spthy")
    got = {r.lemma: r for r in prove_all(th, max_steps=1000)}
    assert got["types"].verdict == VERIFIED
    assert got["session_key_setup_possible"].verdict == VERIFIED
    assert got["session_key_setup_possible"].steps == 5  # as Tamarin
    for name, size in (("nonce_secrecy", 16), ("injective_agree", 14)):
        rules = _lowe_attack_checks(th, got[name])
        assert got[name].steps == size  # Tamarin's proof sizes
        # Lowe's man in the middle: the responder's run with the honest initiator completes, the initiator
        # talks to a revealed party; the trace is printed (as `prove` prints it) one rule instance per line.
        assert "Reveal_ltk" in rules and "R_1" in rules and "I_2" in rules
        text = trace_text(got[name].trace).splitlines()
        assert len(text) == len(rules) and text[0].startswith("  0: ") and all(r in t for r, t in zip(rules, text))
