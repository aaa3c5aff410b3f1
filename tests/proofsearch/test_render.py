"""Rendering: goal normalisation as the oracle samples are compared, trace text and Graphviz output."""

from __future__ import annotations

import shutil

import pytest

from quietrl.proofsearch.render import normalise_goal, normalise_goal_list, trace_dot, trace_text, write_dot
from quietrl.proofsearch.replay import Step
from quietrl.proofsearch.types import App, Fact, Name, Sort


def test_normalise_goal_renames_by_first_occurrence():
    a = normalise_goal("!KU( aenc(<'1', ~k>, pk(~ltkS)) ) @ #vk.1")
    b = normalise_goal("!KU(  aenc(<'1', ~n.3>, pk(~ltkS.2)) )   @ #vk.7")
    assert a == b == "!KU( aenc(<'1', ~v1>, pk(~v2)) ) @ #v3"
    assert normalise_goal("Client_1( S, k ) ▶₀ #i") == "Client_1( v1, v2 ) ▶₀ #v3"
    assert normalise_goal("(#i < #j)  ∥ (#j < #i)") == "(#v1 < #v2) ∥ (#v2 < #v1)"
    # Sorts stay apart: ~k and k are different variables.
    assert normalise_goal("F( ~k, k, $k )") == "F( ~v1, v2, $v3 )"
    assert normalise_goal("!KU( ~k ) @ #vk.5", rename=False) == "!KU( ~k ) @ #vk.N"


def test_goal_lists_rename_across_the_call():
    assert normalise_goal_list(["!KU( ~k ) @ #vk.5", "!KU( pk(~ltkS) ) @ #vk.3"]) == \
        ("!KU( ~v1 ) @ #v2", "!KU( pk(~v3) ) @ #v4")
    assert normalise_goal_list([]) == ()


def _trace():
    k, sk = Name(Sort.FRESH, "k"), Name(Sort.FRESH, "sk")
    c = App("aenc", (k, App("pk", (sk,))))
    return [
        Step("Setup", (Fact("Fr", (sk,)),), (), (Fact("Key", (sk,), persistent=True), Fact("Out", (App("pk", (sk,)),)))),
        Step("Send", (Fact("Fr", (k,)), Fact("Key", (sk,), persistent=True)), (Fact("Sent", (k,)),),
             (Fact("Out", (c,)),)),
        Step("Recv", (Fact("Key", (sk,), persistent=True), Fact("In", (c,))), (Fact("Got", (k,)),), ()),
    ]


def test_trace_text_lists_steps_in_order():
    text = trace_text(_trace())
    lines = text.splitlines()
    assert len(lines) == 3 and lines[0].strip().startswith("0: Setup:") and "Got( ~'k' )" in lines[2]


def test_trace_dot_edges():
    dot = trace_dot(_trace(), "attack")
    assert dot.startswith('digraph "attack" {') and dot.rstrip().endswith("}")
    assert "s0 -> s1;" in dot and "s0 -> s2;" in dot  # the persistent key feeds both later steps
    assert 's1 -> adv [style=dashed' in dot and 'adv -> s2 [style=dashed' in dot
    assert dot.count("[shape=record") == 1 and dot.count(" [label=") == 3
    assert trace_dot(_trace(), "attack") == dot  # deterministic


def test_write_dot_renders_only_with_graphviz(tmp_path):
    out = write_dot(_trace(), tmp_path / "t.dot")
    assert (tmp_path / "t.dot").read_text().startswith("digraph")
    if shutil.which("dot") is None:
        assert out is None
    else:
        assert out is not None and out.exists()


@pytest.mark.parametrize("s", ["<a, b>", "h(x)"])
def test_function_symbols_are_not_renamed(s):
    assert normalise_goal(f"!KU( {s} ) @ #vk").count("(") == s.count("(") + 1
