"""Parser: every shared theory, the typed theory objects, and every error and warning message."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from quietrl.core.errors import UserError
from quietrl.proofsearch import parse_file, parse_theory
from quietrl.proofsearch.types import (
    ALL_TRACES,
    EXISTS_TRACE,
    Action,
    App,
    Bool,
    Conn,
    Equal,
    Last,
    Less,
    Name,
    Not,
    Quant,
    Sort,
    Var,
    pair,
)

from .conftest import shared_theories


def test_shared_theory_count_nonzero_or_skipped(protocols):
    assert len(shared_theories()) == 21


@pytest.mark.parametrize("path", shared_theories() or [None], ids=lambda p: p.name if p else "absent")
def test_every_shared_theory_parses(path, protocols):
    if path is None:
        pytest.fail("no shared theories found")
    th = parse_file(path)
    assert th.rules and th.lemmas
    assert th.warnings == ()


def test_lemmas_match_reference_results(protocols):
    """Every TSV row names a parsed lemma with the same kind (AUTO_typing is generated: not in the files)."""
    rows = list(csv.DictReader(open(protocols / "reference_results.tsv", encoding="utf-8"), delimiter="\t"))
    assert len(rows) == 81
    by_file = {}
    for row in rows:
        if row["lemma"] == "AUTO_typing":
            continue
        th = by_file.setdefault(row["theory"], parse_file(protocols / row["theory"]))
        lem = th.lemma(row["lemma"])
        assert lem is not None, row
        assert lem.trace_quantifier == row["kind"], row
    total = sum(len(th.lemmas) for th in by_file.values())
    assert total == 77  # 81 rows minus the 4 generated AUTO_typing rows


def test_tutorial_structure(protocols):
    th = parse_file(protocols / "Tutorial.spthy")
    assert th.name == "Tutorial"
    assert [r.name for r in th.rules] == ["Register_pk", "Get_pk", "Reveal_ltk", "Client_1", "Client_2", "Serv_1"]
    assert [lem.trace_quantifier for lem in th.lemmas] == [ALL_TRACES] * 3 + [EXISTS_TRACE]
    sig = {f.name: f.arity for f in th.signature.functions}
    assert sig == {"pair": 2, "fst": 1, "snd": 1, "h": 1, "aenc": 2, "adec": 2, "pk": 1}
    user = [e for e in th.signature.equations if e.origin == "user"]
    assert [str(e) for e in user] == ["adec(aenc(m, pk(k)), k) = m"]
    c1 = th.rule("Client_1")
    assert str(c1.conclusions[1]) == "Out( aenc(<'1', ~k>, pkS) )"
    assert c1.premises[1].persistent and c1.premises[1].name == "Pk"
    serv = th.rule("Serv_1")
    assert str(serv.actions[0]) == "Eq( fst(adec(request, ~ltkS)), '1' )"
    (restr,) = th.restrictions
    assert restr.name == "Equality_Checks_Succeed"
    x, y, i = Var("x"), Var("y"), Var("i", 0, Sort.NODE)
    assert restr.formula == Quant("All", (x, y, i), Conn("==>", Action(_fact("Eq", x, y), i), Equal(x, y)))


def _fact(name, *args):
    from quietrl.proofsearch.types import Fact

    return Fact(name, tuple(args))


def test_let_blocks_are_inlined_in_order(protocols):
    th = parse_file(protocols / "classic" / "TLS_Handshake.spthy")
    c2 = th.rule("C_2")
    ms = App("PRF", (pair(Var("pms", 0, Sort.FRESH), Var("nc"), Var("ns")),))  # PRF/1 applied to 3 args
    assert c2.lets[0] == (Var("MS"), ms)
    assert c2.lets[1][1] == App("h", (pair(Name(Sort.PUB, "clientKey"), Var("nc"), Var("ns"), ms),))
    assert "MS" not in str(c2.actions[0])
    th = parse_file(protocols / "classic" / "NSLPK3.spthy")
    assert str(th.rule("R_1").premises[1]) == "In( aenc(<'1', ni, I>, pk(ltkR)) )"


def test_text_after_end_is_ignored(protocols):
    # RFID_Simple has unbalanced comment markers after its `end`.
    th = parse_file(protocols / "loops" / "RFID_Simple.spthy")
    assert [lem.name for lem in th.lemmas] == ["types", "Device_ToBob", "Device_Init_Use_Set", "reachability_left"]


def test_lemma_attributes(protocols):
    th = parse_file(protocols / "classic" / "NSLPK3_untagged.spthy")
    types = th.lemma("types")
    assert types.sources and types.reuse and not types.use_induction
    th = parse_file(protocols / "loops" / "Minimal_HashChain.spthy")
    assert th.lemma("Helper_Loop_and_success").use_induction and th.lemma("Helper_Loop_and_success").reuse


# ---------------------------------------------------------------- syntax features on small inputs

BASE = """theory T begin
builtins: symmetric-encryption, hashing
rule A: [ Fr(~k), In(x) ] --[ Got(x, ~k) ]-> [ St(~k), Out(senc{x, 'c'}~k) ]
rule B: [ St(k) ] --> [ ]
"""


def test_formula_language_and_unicode():
    th = parse_theory(BASE + """
lemma l1: "∀ x k #i. Got(x, k) @ #i ⇒ (∃ #j. K(x) @ #j ∧ #j < #i) ∨ ⊥"
lemma l2 [heuristic=S, hide_lemma=l1, typing]: exists-trace
  "Ex x k #i. Got(x, k) @ i & not(last(#i)) /* comment inside the formula */ & T"
lemma l3: "All x k #i #j. Got(x, k) @ i & Got(x, k) @ j ==> #i = #j"
lemma l4: "not (Ex x k #i. Got(x, k) @ i & x = h(k))"
end""")
    l1, l2, l3, l4 = th.lemmas
    assert isinstance(l1.formula, Quant) and l1.formula.kind == "All"
    assert l2.trace_quantifier == EXISTS_TRACE and l2.sources and l2.heuristic == "S" and l2.hide_lemmas == ("l1",)
    body = l2.formula.body
    assert isinstance(body, Conn) and body.op == "&"
    # & is left-associative: ((Got & not last) & T)
    assert body.right == Bool(True)
    assert body.left.right == Not(Last(Var("i", 0, Sort.NODE)))
    assert l3.formula.body.right == Equal(Var("i", 0, Sort.NODE), Var("j", 0, Sort.NODE))
    eq = l4.formula.body.body.right
    assert eq == Equal(Var("x"), App("h", (Var("k"),)))


def test_quantifier_scope_extends_right():
    th = parse_theory(BASE + 'lemma l: "Ex x k #i. Got(x, k) @ i & Ex #j. K(x) @ j & j < i"\nend')
    f = th.lemmas[0].formula
    inner = f.body.right
    assert isinstance(inner, Quant) and isinstance(inner.body, Conn)
    assert inner.body.right == Less(Var("j", 0, Sort.NODE), Var("i", 0, Sort.NODE))


def test_private_functions_user_equations_annotations_and_heuristic_line():
    th = parse_theory("""theory U begin
functions: f/1 [private], g/2, c/0
equations: g(f(x), y) = x, g(c, y) = c
heuristic: C
rule R: [ Fr(~n) ] --[ A(c)[+], B(f(~n)) ]-> [ !P(g(~n, ~'n1'))[no_precomp] ]
lemma l: "All x #i. A(x) @ i ==> F"
end""")
    assert th.signature.fun("f").private and not th.signature.fun("g").private
    assert th.heuristic == "C"
    r = th.rule("R")
    assert r.actions[0].annotations == frozenset({"+"})
    assert r.actions[0].args == (App("c"),)
    assert r.conclusions[0].annotations == frozenset({"no_precomp"})
    assert r.conclusions[0].args[0].args[1] == Name(Sort.FRESH, "n1")


def test_axiom_is_a_legacy_restriction():
    th = parse_theory(BASE + 'axiom once: "All x #i #j. St(x) @ i & St(x) @ j ==> #i = #j"\n'
                      'lemma l: "All x k #i. Got(x, k) @ i ==> F"\nend')
    assert [r.name for r in th.restrictions] == ["once"]
    assert any("action St occurs in no rule" in w for w in th.warnings)


# ---------------------------------------------------------------- error messages (one line, with location)


def _err(text: str) -> str:
    with pytest.raises(UserError) as ei:
        parse_theory(text, "m.spthy")
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def test_syntax_error_has_file_line_col():
    msg = _err("theory T begin\nrule A: [ Fr(~k) ] -> [ ]\nend")
    # Only what can follow a rule's premises, not the top-level keywords LALR state merging adds to the table row.
    assert msg == "m.spthy:2:20: syntax error: unexpected '-' (expected one of '-->', '--[')"


def test_syntax_error_expected_set_is_what_the_parser_accepts_there():
    assert _err("theory T begin\nfoo\nend") == (
        "m.spthy:2:1: syntax error: unexpected 'foo' (expected one of 'axiom', 'builtins', 'end', 'equations', "
        "'functions', 'heuristic', 'lemma', 'restriction', 'rule')")
    assert _err("theory T begin\nrule A: [ Fr(~k) ] --> [ Out(~k)\nend") == \
        "m.spthy:3:1: syntax error: unexpected 'end' (expected one of ',', '[', ']')"
    msg = _err('theory T begin\nlemma l: "All x #i. A(x) @ i ==> x"\nend')
    assert msg == "m.spthy:2:35: syntax error: unexpected '\"' (expected one of '<', '=', '@')"


def test_syntax_error_other_lark_error_is_one_line():
    import lark

    from quietrl.proofsearch.parser import _Ctx, _syntax_error

    err = _syntax_error(_Ctx("m.spthy"), lark.exceptions.LarkError("boom\ndetails"))
    assert isinstance(err, UserError) and str(err) == "m.spthy:0:0: syntax error: boom"


def test_unexpected_character():
    assert _err("theory T begin\nrule A: [ Fr(~k) ] --> [ Out(~k ? 1) ]\nend") == \
        "m.spthy:2:33: syntax error: unexpected character '?' (expected one of ')', ',')"


def test_missing_end():
    # Reported just after the last token (where `end` is missing), past trailing blank lines and comments.
    msg = _err("theory T begin\nrule A: [ Fr(~k) ] --> [ ]\n\n// trailing comment\n")
    assert msg == "m.spthy:2:27: unexpected end of file (missing 'end'?)"
    assert _err("theory T begin") == "m.spthy:1:15: unexpected end of file (missing 'end'?)"
    assert _err("") == "m.spthy:1:1: unexpected end of file (missing 'end'?)"


@pytest.mark.parametrize("builtin", ["diffie-hellman", "bilinear-pairing", "xor", "multiset", "natural-numbers"])
def test_unsupported_builtins_are_rejected_with_location(builtin):
    msg = _err(f"theory T begin\nbuiltins: hashing, {builtin}\nend")
    assert msg.startswith("m.spthy:2:20: unsupported builtin")
    assert builtin in msg


def test_unknown_builtin():
    assert _err("theory T begin\nbuiltins: hashes\nend").startswith("m.spthy:2:11: unknown builtin 'hashes'; "
                                                                    "supported: asymmetric-encryption, hashing,")


def test_dh_operator_is_named():
    msg = _err("theory T begin\nrule A: [ Fr(~x) ] --> [ Out('g'^~x) ]\nend")
    assert msg.startswith("m.spthy:2:33: unsupported operator '^'")


def test_unsupported_construct_is_named():
    msg = _err("theory T begin\nprocess: out('c')\nend")
    assert msg.startswith("m.spthy:2:1: unsupported construct: SAPIC processes")


def test_fact_with_two_arities():
    msg = _err("theory T begin\nrule A: [ Fr(~k) ] --> [ St(~k) ]\nrule B: [ St(k, k) ] --> [ ]\nend")
    assert msg == "m.spthy:3:11: fact St used with arity 2 here and arity 1 at 2:26"


def test_fact_arity_across_rules_and_formulas():
    msg = _err(BASE + 'lemma l: "All x #i. Got(x) @ i ==> F"\nend')
    assert msg == "m.spthy:5:21: fact Got used with arity 1 here and arity 2 at 3:31"


def test_reserved_fact_arity():
    assert _err("theory T begin\nrule A: [ Fr(~k, ~l) ] --> [ ]\nend") == \
        "m.spthy:2:11: fact Fr must have arity 1, used with 2 argument(s)"


def test_undeclared_function_and_wrong_arity():
    assert _err("theory T begin\nrule A: [ Fr(~k) ] --> [ Out(enc(~k)) ]\nend") == \
        "m.spthy:2:30: undeclared function symbol enc/1"
    msg = _err("theory T begin\nbuiltins: symmetric-encryption\nrule A: [ Fr(~k) ] --> [ Out(senc(~k)) ]\nend")
    assert msg == "m.spthy:3:30: function symbol senc has arity 2, used with 1 argument(s)"


def test_non_subterm_convergent_equation():
    msg = _err("theory T begin\nfunctions: f/1, g/1\nequations: f(x) = g(x)\nend")
    assert msg.startswith("m.spthy:3:12: equation f(x) = g(x) is not subterm-convergent")
    assert _err("theory T begin\nfunctions: f/1\nequations: f(x) = y\nend") == \
        "m.spthy:3:12: equation f(x) = y: right-hand side variable(s) y not in the left-hand side"


def test_convergent_attribute_rejected():
    assert _err("theory T begin\nfunctions: f/1\nequations [convergent]: f(x) = x\nend") == \
        "m.spthy:3:11: unsupported: [convergent] equations (only subterm-convergent equations are supported)"


def test_unsupported_equation_attribute():
    assert _err("theory T begin\nfunctions: f/1\nequations [foo]: f(x) = x\nend") == \
        "m.spthy:3:11: unsupported equation attribute [foo]"


@pytest.mark.parametrize("lhs", ["x", "<x, x>"])
def test_equation_lhs_must_be_a_function_application(lhs):
    assert _err(f"theory T begin\nfunctions: f/1\nequations: {lhs} = x\nend") == \
        f"m.spthy:3:12: equation {lhs} = x: the left-hand side must be a function application"


def test_names_not_allowed_in_equations():
    assert _err("theory T begin\nfunctions: f/2\nequations: f(x, 'c') = x\nend") == \
        "m.spthy:3:12: equation f(x, 'c') = x: names are not allowed in equations"


def test_function_declared_with_two_arities():
    assert _err("theory T begin\nfunctions: f/1, f/2\nend") == \
        "m.spthy:2:17: function symbol f declared with arity 2 and 1"
    # A builtin's symbols clash with user declarations too (reported at the builtin).
    assert _err("theory T begin\nfunctions: pk/2\nbuiltins: asymmetric-encryption\nend") == \
        "m.spthy:3:11: function symbol pk declared with arity 1 and 2"


def test_pair_is_reserved():
    assert _err("theory T begin\nfunctions: pair/2\nend") == "m.spthy:2:12: 'pair' is a reserved function symbol"


def test_unguarded_formula():
    msg = _err(BASE + 'lemma l: "All x #i. x = x ==> F"\nend')
    assert "unguarded variable(s) x, #i" in msg and msg.startswith("m.spthy:5:11:")
    assert _err(BASE + 'lemma l: "All x k #i. Got(x, k) @ i & F"\nend').startswith(
        "m.spthy:5:11: lemma l: unguarded formula: the body of a universal quantifier must be an implication")


def test_unbound_variable_in_lemma():
    assert _err(BASE + 'lemma l: "All x k #i. Got(x, k) @ i ==> x = y"\nend') == \
        "m.spthy:5:41: lemma l: unbound variable y"
    assert _err(BASE + 'lemma l: "All x k #i. Got(x, k) @ i ==> i < j"\nend') == \
        "m.spthy:5:41: lemma l: unbound temporal variable #j"


def test_message_variable_where_a_temporal_one_is_expected():
    assert _err(BASE + 'lemma l: "All x k #i. Got(x, k) @ i ==> x < i"\nend') == \
        "m.spthy:5:41: lemma l: x is a message variable, where a temporal variable is expected"


def test_expected_a_fact_before_at():
    assert _err(BASE + 'lemma l: "All x k #i. <x, k> @ i ==> F"\nend') == \
        "m.spthy:5:23: lemma l: expected a fact before '@'"


def test_expected_a_temporal_variable():
    assert _err(BASE + 'restriction r: "All x k #i. Got(x, k) @ h(x) ==> F"\nend') == \
        "m.spthy:5:29: restriction r: expected a temporal variable, found h"


@pytest.mark.parametrize("attr", ["left", "right", "diffEquivLemma"])
def test_observational_equivalence_lemma_attributes(attr):
    assert _err(BASE + f'lemma l [{attr}]: "All x k #i. Got(x, k) @ i ==> F"\nend') == \
        f"m.spthy:5:7: unsupported lemma attribute [{attr}] (observational equivalence)"


def test_fresh_variable_without_fr():
    msg = _err("theory T begin\nrule A: [ In(x) ] --> [ Out(<x, ~n>) ]\nend")
    assert msg == "m.spthy:2:25: rule A: fresh variable ~n in the right-hand side is not bound by a " \
                  "premise (add Fr(~n))"


def test_duplicate_names():
    assert _err("theory T begin\nrule A: [ ] --> [ ]\nrule A: [ ] --> [ ]\nend") == \
        "m.spthy:3:6: duplicate rule name A (first at 2:6)"
    assert _err('theory T begin\nrestriction r: "F"\naxiom r: "F"\nend') == \
        "m.spthy:3:7: duplicate restriction name r (first at 2:13)"
    assert _err('theory T begin\nlemma l: "F"\nlemma l: "F"\nend') == \
        "m.spthy:3:7: duplicate lemma name l (first at 2:7)"


def test_warnings_stay_warnings():
    th = parse_theory("theory T begin\nrule A: [ In(x) ] --> [ !S(x), Out(y) ]\nrule B: [ S(x) ] --> [ ]\nend",
                      "w.spthy")
    assert any("variable y in the right-hand side is not bound" in w for w in th.warnings)
    assert any("used both as persistent (!) and linear fact" in w for w in th.warnings)
    assert all(w.startswith("w.spthy:") and ": warning: " in w for w in th.warnings)


def test_rule_wellformedness_warnings():
    th = parse_theory("theory T begin\nrule A: [ Out(x), !Fr(~k) ] --[ In(x) ]-> [ Fr(~k), S(x, $x) ]\nend", "w.spthy")
    assert set(th.warnings) == {
        "w.spthy:2:45: warning: fact Fr used both as persistent (!) and linear fact",
        "w.spthy:2:11: warning: rule A: fact Out in a premise",
        "w.spthy:2:45: warning: rule A: fact Fr in a conclusion",
        "w.spthy:2:33: warning: rule A: fact In as an action",
        "w.spthy:2:20: warning: rule A: builtin fact Fr cannot be persistent",
        "w.spthy:2:6: warning: rule A: variable x used with several sorts (msg, pub)",
    }


def test_unknown_attributes_are_warnings_not_errors(tmp_path):
    """Unknown lemma and function attributes parse; the warning is in Theory.warnings, and the CLI prints it."""
    th = parse_theory(BASE + 'lemma l [weird]: "All x k #i. Got(x, k) @ i ==> F"\nend', "w.spthy")
    assert th.lemma("l") is not None
    assert th.warnings == ("w.spthy:5:7: warning: lemma l: ignoring unknown attribute [weird]",)
    th = parse_theory("theory T begin\nfunctions: f/1 [weird]\nend", "w.spthy")
    assert th.signature.fun("f").arity == 1
    assert th.warnings == ("w.spthy:2:12: warning: ignoring unknown function attribute [weird]",)
    from click.testing import CliRunner

    from quietrl.proofsearch.cli import cli

    f = tmp_path / "w.spthy"
    f.write_text("theory T begin\nfunctions: f/1 [weird]\nend\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["parse", str(f)])
    assert r.exit_code == 0, r.output
    assert r.stderr == f"{f}:2:12: warning: ignoring unknown function attribute [weird]\n"


def test_missing_file():
    with pytest.raises(UserError) as ei:
        parse_file("/nonexistent/x.spthy")
    assert str(ei.value) == "/nonexistent/x.spthy: no such file"


def test_unreadable_file(tmp_path):
    bad = tmp_path / "latin1.spthy"
    bad.write_bytes(b"theory T begin // caf\xe9\nend\n")
    with pytest.raises(UserError) as ei:
        parse_file(bad)
    assert str(ei.value) == f"{bad}: cannot read file (UnicodeDecodeError)"
    with pytest.raises(UserError) as ei:
        parse_file(tmp_path)
    assert str(ei.value) == f"{tmp_path}: cannot read file (IsADirectoryError)"


def test_bundled_examples_parse_without_warnings():
    from quietrl.proofsearch import example_names, example_path

    names = example_names()
    assert len([n for n in names if n.startswith("mutant_")]) >= 5
    for n in names:
        th = parse_file(example_path(n))
        assert th.warnings == (), n
    c = Counter(len(parse_file(example_path(n)).lemmas) for n in names)
    assert sum(c.values()) == len(names)
