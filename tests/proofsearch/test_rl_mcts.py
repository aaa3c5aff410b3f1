"""AND/OR MCTS: back-up on hand-built trees with known optima, transpositions, extraction on the engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from quietrl.core.errors import ConfigError
from quietrl.proofsearch import example_path, parse_file
from quietrl.proofsearch.env import CLOSED, DEAD, OPEN, TRACE, Case, MethodFailed, check_proof
from quietrl.proofsearch.mcts import AndNode, MCTSConfig, OrNode, Search, StepCache, extract, priors, search_lemma
from quietrl.proofsearch.proofcheck import check_script
from quietrl.proofsearch.prover import FOUND_TRACE, INCOMPLETE, VERIFIED, prove


@dataclasses.dataclass(frozen=True)
class M:
    name: str

    def text(self) -> str:
        return self.name


class Toy:
    """A hand-built problem: ``tree[state] = [(method, [(case, child)])]``; leaves are ``X*`` (closed),
    ``T*`` (trace), ``D*`` (dead); ``alias`` maps states to a shared key (transpositions)."""

    def __init__(self, tree, exists=False, alias=None, failing=()):
        self.tree, self.exists, self.alias, self.failing = tree, exists, alias or {}, set(failing)
        self.calls = []

    def root(self):
        return "R"

    def key(self, s):
        return self.alias.get(s, s)

    def methods(self, s):
        return [M(m) for m, _ in self.tree.get(self.key(s), [])]

    def outcome(self, s):
        k = self.key(s)
        return {"X": (CLOSED, "leaf"), "T": (TRACE, ""), "D": (DEAD, "dead")}.get(k[0], (OPEN, ""))

    def step(self, s, m):
        self.calls.append((s, m.name))
        if m.name in self.failing:
            raise MethodFailed(m.name)
        cases = dict(self.tree[self.key(s)])[m.name]
        return [Case(c, child, *self.outcome(child)) for c, child in cases]


# Greedy (method rank 0 everywhere) proves R with 8 steps via a; the optimum is 2 via b (b, then `by w`).
ALL_TREE = {
    "R": [("a", [("A", "N1"), ("B", "N2")]), ("b", [("C", "N3")])],
    "N1": [("x", [("", "X1")])],
    "N2": [("y", [("c1", "N4"), ("c2", "N5")])],
    "N4": [("z", [("", "X2")])],
    "N5": [("z2", [("", "X3")])],
    "N3": [("w", [])],  # every case died: `by solve(w)`, one step
}


def size_of(tree, s, exists):
    """Brute-force optimum (Tamarin's size; a trace path for traces) over a toy tree, or None."""
    if s[0] in "XT":
        return 1
    if s[0] == "D":
        return None
    best = None
    for _, cases in tree.get(s, []):
        subs = [size_of(tree, c, exists) for _, c in cases]
        traces = [v for (_, c), v in zip(cases, subs) if v is not None and _has_trace(tree, c)]
        if traces:
            cand = 1 + min(traces)
        elif all(v is not None for v in subs):
            cand = 1 + sum(subs)
        else:
            continue
        best = cand if best is None else min(best, cand)
    return best


def _has_trace(tree, s):
    return s[0] == "T" or any(_has_trace(tree, c) for _, cases in tree.get(s, []) for _, c in cases)


def run_toy(problem, sims=200, **kw):
    cfg = MCTSConfig(simulations=sims, rank_lambda=0.0, continue_after_proof=True, **kw)
    search = Search(problem, cfg, StepCache())
    # keep searching after the first proof, so that the whole small tree is explored
    for _ in range(sims):
        search.simulate()
    return search


def test_backup_all_traces_known_optimum():
    problem = Toy(ALL_TREE)
    search = run_toy(problem)
    assert search.root.proved and not search.root.trace
    proof = extract(search.root)
    assert proof.size() == size_of(ALL_TREE, "R", False) == 2
    assert proof.method == "b"
    # the other proof (8 steps) is also settled, and is the one the greedy rank-0 path takes
    a_edge = search.root.edges[0]
    assert a_edge is None or a_edge.child is None or not a_edge.child.failed


def test_backup_all_traces_needs_every_case():
    # a's split has a dead case: the split never settles, so the proof must go through b
    tree = dict(ALL_TREE, N2=[("y", [("c1", "N4"), ("c2", "D1")])], N3=[("w", [("", "N3b")])], N3b=[("w2", [])])
    search = run_toy(Toy(tree), expand_top_n=1)
    assert search.root.edges[0].child.failed and search.root.edges[0].failed
    proof = extract(search.root)
    assert proof.method == "b" and proof.size() == size_of(tree, "R", False) == 3


EXISTS_TREE = {
    # a: one case dead, the other reaches a trace after 2 more steps -> trace path a, t, u, SOLVED = 4
    "R": [("a", [("A", "D1"), ("B", "N7")]), ("b", [("C", "N8")])],
    "N7": [("t", [("", "N9")])],
    "N9": [("u", [("", "T1")])],
    # b: a trace after 3 more steps -> 5
    "N8": [("v", [("", "N10")])],
    "N10": [("v2", [("", "N11")])],
    "N11": [("v3", [("", "T2")])],
}


def test_backup_exists_trace_split_is_an_or():
    search = run_toy(Toy(EXISTS_TREE, exists=True))
    assert search.root.proved and search.root.trace
    proof = extract(search.root)
    assert proof.size() == size_of(EXISTS_TREE, "R", True) == 4
    assert [name for name, _ in proof.cases] == ["B"]  # cut to the path to the trace


def test_all_traces_mode_abandons_split_with_dead_case():
    # all-traces: a split with a case that can never close is failed (its sibling's trace is not searched
    # for); the trace reached through b still settles the lemma (falsified), 5 steps on its path
    search = run_toy(Toy(EXISTS_TREE, exists=False))
    assert search.root.edges[0].child.failed
    proof = extract(search.root)
    assert search.root.trace and proof.method == "b" and proof.size() == 5


# A three-case split whose cases need 2 methods each (a: 7 methods, depth 3) against a chain of 4 methods (b):
# with the sum back-up (proof size) b is the better proof, value 1 - 4; with min (the longest branch) a is,
# value 1 - 3.
SPLIT_TREE = {
    "R": [("a", [("A", "N1"), ("B", "N2"), ("C", "N3")]), ("b", [("", "M1")])],
    "N1": [("x1", [("", "N1b")])], "N1b": [("x2", [("", "X1")])],
    "N2": [("y1", [("", "N2b")])], "N2b": [("y2", [("", "X2")])],
    "N3": [("z1", [("", "N3b")])], "N3b": [("z2", [("", "X3")])],
    "M1": [("v1", [("", "M2")])], "M2": [("v2", [("", "M3")])], "M3": [("v3", [("", "X4")])],
}


@pytest.mark.parametrize("backup, want", [("sum", 1 - 4), ("min", 1 - 3)])
def test_backup_values_reach_the_known_optimum(backup, want):
    """After the root is proved the search improves (cfg.improve): once the small tree is explored, the backed-up
    values are exact, the root's is 1 - (steps of the best proof under the back-up) and each method's is its
    own best proof's."""
    search = Search(Toy(SPLIT_TREE), MCTSConfig(rank_lambda=0.0, and_backup=backup), StepCache())
    search.run(400, lambda: True)
    assert search.improve and search.root.proved
    assert search.root.value == pytest.approx(want)
    a, b = (e.child for e in search.root.edges)
    assert -1.0 + b.value == pytest.approx(1 - 4)
    assert -1.0 + a.value == pytest.approx(1 - 7 if backup == "sum" else 1 - 3)


def test_backup_exists_trace_split_values_its_best_live_case():
    """Exists-trace: a split is an OR over its cases, a dead case drops out and the split's value is its most
    promising live case's; all-traces: the same dead case fails the split."""
    tree = {"R": [("a", [("A", "D1"), ("B", "N0"), ("C", "K0")])], "K0": [("k", [("", "K1")])]}
    tree.update({f"N{i}": [(f"m{i}", [("", f"N{i + 1}")])] for i in range(12)})
    tree.update({f"K{i}": [(f"k{i}", [("", f"K{i + 1}")])] for i in range(1, 12)})
    search = Search(Toy(tree, exists=True), MCTSConfig(rank_lambda=0.0), StepCache())
    for _ in range(6):
        search.simulate()
    a = search.root.edges[0].child
    live = [c.value if n else 0.0 for (name, c), n in zip(a.cases, a.case_visits) if name != "A"]
    assert not a.failed and a.cases[0][1].failed and len(set(live)) == 2  # two live cases, valued differently
    assert a.value == pytest.approx(max(live))
    search = Search(Toy(tree, exists=False), MCTSConfig(rank_lambda=0.0), StepCache())
    for _ in range(6):
        search.simulate()
    assert search.root.edges[0].child.failed and search.root.failed


def test_and_backup_min_and_sum():
    kids = []
    for i, v in enumerate((0.5, -2.0, -1.0)):
        n = OrNode(f"k{i}", f"k{i}", OPEN)
        n.methods, n.value = [], v
        kids.append((f"c{i}", n))
    for backup, exists, want in (("min", False, -2.0), ("sum", False, 1 - (0.5 + 3 + 2)), ("min", True, 0.5)):
        problem = Toy({"R": []}, exists=exists)
        search = Search(problem, MCTSConfig(and_backup=backup), StepCache())
        a = AndNode(kids)
        a.case_visits = [1, 1, 1]
        search._update_and(a)
        assert a.value == pytest.approx(want)
    # unvisited cases count as V = 0 (about one step left each)
    a = AndNode(kids)
    Search(Toy({"R": []}), MCTSConfig(and_backup="sum"), StepCache())._update_and(a)
    assert a.value == pytest.approx(1 - 3)
    a = AndNode(kids)
    Search(Toy({"R": []}), MCTSConfig(and_backup="min"), StepCache())._update_and(a)
    assert a.value == 0.0
    # settled cases drop out; all settled -> 1.0 and the split is proved
    for _, k in kids:
        k.proved = True
    a = AndNode(kids)
    Search(Toy({"R": []}), MCTSConfig(), StepCache())._update_and(a)
    assert a.value == 1.0 and a.proved


def test_transpositions_share_nodes_and_engine_steps():
    tree = {
        "R": [("a", [("", "S1")]), ("b", [("", "S1bis")])],
        "S1": [("x", [("c1", "X1"), ("c2", "X2")])],
    }
    problem = Toy(tree, alias={"S1bis": "S1"})
    search = run_toy(problem, sims=50, expand_top_n=2)
    node_a = search.root.edges[0].child.cases[0][1]
    node_b = search.root.edges[1].child.cases[0][1]
    assert node_a is node_b
    assert sum(1 for _, m in problem.calls if m == "x") == 1
    assert extract(search.root).size() == 4


def test_failed_methods_are_never_reselected():
    problem = Toy(ALL_TREE, failing={"b"})
    search = run_toy(problem, sims=100)
    assert search.root.edges[1].failed
    assert sum(1 for _, m in problem.calls if m == "b") == 1
    assert extract(search.root).size() == 8


def test_priors_follow_rank_and_temperature():
    import numpy as np

    p = priors(np.zeros(4), MCTSConfig(rank_lambda=1.0, temperature=1.0))
    assert p.sum() == pytest.approx(1.0) and np.all(np.diff(p) < 0)
    flat = priors(np.zeros(4), MCTSConfig(rank_lambda=1.0, temperature=1e6))
    assert np.allclose(flat, 0.25, atol=1e-4)
    with pytest.raises(ConfigError, match="and_backup"):
        MCTSConfig(and_backup="max")
    with pytest.raises(ConfigError, match="simulations"):
        MCTSConfig(simulations=0)


def test_scouting_executes_top_n_and_widens_by_its_own_factor():
    cfg = MCTSConfig(rank_lambda=0.0, expand_top_n=2, scout_top_n=1, scout_widen_c=0.0)
    for scout, expect in ((True, ["a"]), (False, ["a", "b"])):
        problem = Toy(ALL_TREE)
        Search(problem, cfg, StepCache(), scout=scout).simulate()
        assert [m for _, m in problem.calls] == expect
    # R: a leads to a full binary split of depth 5 (proof size 96 through a), b to a 1-step close. Widening
    # while scouting reaches b once a's open cases pile up; without it only the top method is tried at each
    # node.
    tree = {"R": [("a", [("", "N")]), ("b", [("", "Nb")])], "Nb": [("w", [])]}

    def split(name: str, depth: int) -> None:
        if depth == 0:
            tree[name] = [("e" + name, [("", "X" + name)])]
            return
        tree[name] = [("m" + name, [("l", name + "0"), ("r", name + "1")])]
        split(name + "0", depth - 1)
        split(name + "1", depth - 1)

    split("N", 5)
    for widen_c, via_b, size in ((None, True, 2), (0.0, False, 96)):
        problem = Toy(tree)
        search = Search(problem, dataclasses.replace(cfg, scout_widen_c=widen_c), StepCache(), scout=True)
        search.run(500, lambda: True)
        assert search.root.proved and ("b" in [m for _, m in problem.calls]) == via_b
        assert extract(search.root).size() == size
    with pytest.raises(ConfigError, match="scout_top_n"):
        MCTSConfig(scout_top_n=0)
    with pytest.raises(ConfigError, match="scout_widen_c"):
        MCTSConfig(scout_widen_c=-1.0)


# ------------------------------------------------------------------------------------------ on the engine

SMALL = MCTSConfig(simulations=30, searches=2, proofs=1, max_executions=80)


@pytest.fixture(scope="module")
def client_server():
    return parse_file(example_path("client_server"))


def test_engine_proof_is_checked_and_no_longer_than_greedy(client_server):
    lem = next(lem for lem in client_server.lemmas if lem.name == "key_secret")
    greedy = prove(client_server, lem, 200)
    r = search_lemma(client_server, "key_secret", SMALL)
    assert r.verdict == VERIFIED == greedy.verdict
    assert r.size == r.proof.size() <= greedy.steps
    assert check_proof(client_server, lem, r.proof).ok
    assert check_script(client_server, lem, r.script()).ok
    assert r.executions_to_first_proof is not None and r.executions_to_first_proof <= r.executions <= 80


def test_a_proof_the_checker_rejects_is_never_reported(client_server, monkeypatch):
    """The search reports only proofs that pass the engine's checker: with a checker that rejects everything the
    same search that proves key_secret above reports no proof, the lemma stays incomplete, the rejections listed."""
    from quietrl.proofsearch import mcts
    from quietrl.proofsearch.proofcheck import CheckReport

    seen = []

    def reject(theory, lemma, proof):
        seen.append(proof.size())
        return CheckReport(False, ["planted rejection"])

    monkeypatch.setattr(mcts, "check_proof", reject)
    r = search_lemma(client_server, "key_secret", SMALL)
    assert seen and r.verdict == INCOMPLETE and r.proof is None and r.size is None and not r.proved
    assert r.executions_to_first_proof is None and r.proofs_found == 0
    assert len(r.rejected) == len(seen) and all("planted rejection" in x for x in r.rejected)


def test_engine_exists_trace_is_a_replayed_path(client_server):
    lem = next(lem for lem in client_server.lemmas if lem.name == "setup_reachable")
    r = search_lemma(client_server, "setup_reachable", SMALL)
    assert r.verdict == VERIFIED
    node = r.proof
    while node.method is not None:  # a trace proof is the root-to-trace path
        assert len(node.cases) == 1
        node = node.cases[0][1]
    assert node.leaf == "solved"
    assert check_proof(client_server, lem, r.proof).ok


def test_engine_attack_found():
    theory = parse_file(example_path("mutant_client_server_no_encryption"))
    r = search_lemma(theory, "key_secret", SMALL)
    assert r.verdict == FOUND_TRACE
    assert "SOLVED // trace found" in r.script()


def test_expert_targets_from_the_proof_structure():
    from quietrl.proofsearch.mcts import chosen_index, proof_value

    tree = {"R": [("d", [("", "D1")]), ("y", [("c1", "N4"), ("c2", "N5")])],
            "N4": [("z", [("", "X2")])], "N5": [("z2", [("", "X3")])]}
    search = run_toy(Toy(tree), sims=40)
    assert chosen_index(search.root) == 1  # the only method whose cases all close
    assert proof_value(search.root, "sum") == 1 - 3  # y, z, z2
    assert proof_value(search.root, "min") == 1 - 2  # the longest branch: y, z
    assert chosen_index(search.table["N4"]) == 0 and proof_value(search.table["N4"]) == 0.0


def _record_searches(monkeypatch, what):
    """A list that gets ``what(search, kwargs)`` of every :class:`Search` built while the test runs."""
    from quietrl.proofsearch import mcts

    seen = []
    init = mcts.Search.__init__

    def spy(self, *args, **kw):
        init(self, *args, **kw)
        seen.append(what(self, kw))

    monkeypatch.setattr(mcts.Search, "__init__", spy)
    return seen


def test_scout_top_n_holds_until_the_first_proof(client_server, monkeypatch):
    widths = _record_searches(monkeypatch, lambda search, kw: search.top_n)
    cfg = dataclasses.replace(SMALL, searches=3, proofs=3, scout_top_n=1, expand_top_n=3)
    r = search_lemma(client_server, "key_secret", cfg)
    assert r.proofs_found >= 2 and len(widths) == r.searches == 3
    assert widths == [1, 3, 3]  # the first search proves key_secret; the later ones widen
    widths.clear()
    search_lemma(client_server, "key_secret", dataclasses.replace(cfg, scout_top_n=None))
    assert widths == [3, 3, 3]


def test_fpu_floor_tries_an_untried_sibling_once_the_tried_branch_looks_long():
    # a (rank 0) leads into an endless chain, b (rank 1) closes at once. With the spec's Q = V(s) − δ for
    # an untried method, b stays below a (their gap is δ however long a's chain gets) and only the prior
    # term reaches it (60 simulations here); a floor of −5 tries b once a looks longer than ~5 steps.
    tree = {f"C{k}": [("n", [("", f"C{k + 1}")])] for k in range(200)}
    tree["R"] = [("a", [("", "C0")]), ("b", [("", "X1")])]

    def simulations_to_proof(floor):
        search = Search(Toy(tree), MCTSConfig(rank_lambda=0.5, expand_top_n=1, fpu_floor=floor), StepCache())
        for n in range(1, 200):
            search.simulate()
            if search.root.proved:
                return n
        return None

    with_floor, without = simulations_to_proof(-5.0), simulations_to_proof(None)
    assert with_floor is not None and with_floor <= 15
    assert without is None or without > 3 * with_floor
    with pytest.raises(ConfigError, match="fpu_floor"):
        MCTSConfig(fpu_floor=1.0)


def test_scout_fpu_from_sets_the_floor_in_later_searches_before_the_first_proof(client_server, monkeypatch):
    tree = {f"C{k}": [("n", [("", f"C{k + 1}")])] for k in range(200)}
    tree["R"] = [("a", [("", "C0")]), ("b", [("", "X1")])]
    cfg = MCTSConfig(rank_lambda=0.5, expand_top_n=1, fpu_floor=-5.0, scout_fpu_from=2)
    for scout_floor, floor in ((False, None), (True, -5.0)):
        search = Search(Toy(tree), cfg, StepCache(), scout=True, scout_floor=scout_floor)
        assert search.fpu_floor == floor
        search.run(15, lambda: True)
        assert search.root.proved == scout_floor  # only the floor tries b below a's endless chain
    floors = _record_searches(monkeypatch, lambda search, kw: (kw["scout"], search.fpu_floor))
    base = dataclasses.replace(SMALL, simulations=1, growth=2.0, searches=8, proofs=8, max_executions=400)
    for start in (None, 3):
        floors.clear()
        search_lemma(client_server, "key_secret", dataclasses.replace(base, scout_fpu_from=start))
        scouting = [f for scout, f in floors if scout]
        assert 3 <= len(scouting) < len(floors)  # 1, 2, 4, ... simulations: the first proof takes a few searches
        expected = [None] * len(scouting) if start is None else [None, None] + [base.fpu_floor] * (len(scouting) - 2)
        assert scouting == expected
        assert all(f == base.fpu_floor for scout, f in floors if not scout)
    floors.clear()  # an exists-trace lemma: no floor while it looks for its trace
    r = search_lemma(client_server, "setup_reachable", dataclasses.replace(base, scout_fpu_from=1))
    assert r.proved and len(floors) >= 2 and all(f is None for scout, f in floors if scout)
    with pytest.raises(ConfigError, match="scout_fpu_from"):
        MCTSConfig(scout_fpu_from=0)


def test_scout_fpu_visits_sets_the_floor_at_nodes_past_that_many_visits():
    # the endless chain below a (rank 0) and b (rank 1) closing at once: before the first proof the floor
    # is off, so only a node's visit count past scout_fpu_visits lets b's floor value count
    tree = {f"C{k}": [("n", [("", f"C{k + 1}")])] for k in range(200)}
    tree["R"] = [("a", [("", "C0")]), ("b", [("", "X1")])]

    def simulations_to_proof(visits, exists=False):
        cfg = MCTSConfig(rank_lambda=0.5, expand_top_n=1, fpu_floor=-5.0, scout_fpu_visits=visits)
        search = Search(Toy(tree, exists=exists), cfg, StepCache(), scout=True)
        for n in range(1, 80):
            search.simulate()
            if search.root.proved:
                return n
        return None

    at_12 = simulations_to_proof(12)
    assert at_12 is not None and 12 < at_12 <= 20  # not before the root has passed 12 visits
    without = simulations_to_proof(None)  # only the prior term reaches b
    assert without is None or without > 2 * at_12
    assert simulations_to_proof(12, exists=True) == without  # exists-trace lemmas: no floor
    with pytest.raises(ConfigError, match="scout_fpu_visits"):
        MCTSConfig(scout_fpu_visits=0)


# a's first case N1 has a long proof (p: five steps, rank 0) and a short one (q: one step, rank 1)
IMPROVE_TREE = {
    "R": [("a", [("A", "N1"), ("B", "X0")])],
    "N1": [("p", [("", "P1")]), ("q", [("", "X9")])],
    "P1": [("p1", [("", "P2")])],
    "P2": [("p2", [("", "P3")])],
    "P3": [("p3", [("", "P4")])],
    "P4": [("p4", [("", "X5")])],
}


def _after_first_proof(improve: bool) -> int:
    """Size of the best proof of a search that follows a first (scouting) search on IMPROVE_TREE."""
    cfg = MCTSConfig(simulations=40, rank_lambda=0.5, expand_top_n=1, fpu_floor=-3.0, improve=improve)
    cache = StepCache()
    first = Search(Toy(IMPROVE_TREE), cfg, cache, scout=True)
    first.run(40, lambda: True)
    assert first.root.proved and extract(first.root).size() == 8  # through p: the settled node N1
    later = Search(Toy(IMPROVE_TREE), cfg, cache)
    later.run(40, lambda: True)
    assert later.root.proved
    return extract(later.root).size()


def test_improving_search_reopens_a_settled_node_for_a_shorter_proof():
    # improving: N1 stays selectable after it is settled, its value is its proof's (−4), so q (floor −3)
    # is tried below it and the proof shrinks to a, q, X9, X0 = 4; a search that stops at the re-found
    # proof (cached steps) keeps the 8 steps through p
    assert _after_first_proof(improve=True) == 4 == size_of(IMPROVE_TREE, "R", False)
    assert _after_first_proof(improve=False) == 8


def test_improving_searches_count_only_smaller_proofs(client_server):
    # key_secret's 5-step proof is found by the first search and re-found (cached steps, no new execution)
    # by every later one. Without improve each re-found proof counts (a later search stops at it): proofs=2
    # stops after two searches. Improving searches run on past it and a proof no smaller does not count:
    # all four searches run and spend executions on alternatives.
    cfg = MCTSConfig(simulations=30, searches=4, proofs=2, max_executions=200, improve=False)
    r = search_lemma(client_server, "key_secret", cfg)
    assert r.size == 5 and r.proofs_found == r.searches == 2
    ri = search_lemma(client_server, "key_secret", dataclasses.replace(cfg, improve=True))
    assert ri.size == 5 and ri.proofs_found == ri.searches == 4 and ri.executions > r.executions


def test_scout_net_when_stuck_follows_the_rank_until_a_node_passes_the_visit_floor():
    # a (rank 0) and b (rank 1) run into endless chains, c (rank 2) closes at once; the network's logits
    # put c first and its value head says "50 steps left"
    tree = {f"{p}{k}": [("n", [("", f"{p}{k + 1}")])] for p in "CD" for k in range(300)}
    tree["R"] = [("a", [("", "C0")]), ("b", [("", "D0")]), ("c", [("", "X1")])]
    asked = []

    def evaluator(state, ms):
        asked.append(state)
        return np.arange(len(ms), dtype=float)[::-1] * -3.0, -50.0

    def run(evaluator=None, stuck=True, scout=True, sims=150, scout_net=False):
        cfg = MCTSConfig(rank_lambda=0.5, expand_top_n=1, fpu_floor=-5.0, scout_fpu_visits=12,
                         scout_net_when_stuck=stuck)
        problem = Toy(tree)
        search = Search(problem, cfg, StepCache(), evaluator, scout=scout, scout_net=scout_net)
        for n in range(1, sims):
            search.simulate()
            if search.root.proved:
                return search, problem, n
        return search, problem, None

    mcts, mcts_problem, mcts_n = run()
    stuck, stuck_problem, stuck_n = run(evaluator)
    # the network was first asked at the root once it had passed 12 visits, and never below it
    assert asked == ["R"] and stuck.root.prior_net is not None
    assert stuck_problem.calls[:13] == mcts_problem.calls[:13]  # until then the same search as MCTS
    assert stuck.root.v_net == 0.0  # the default leaf value, not the value head
    # past the floor the network's order tries c before b; the rank's order tries b first
    assert [m for _, m in stuck_problem.calls if m != "n"] == ["a", "c"]
    assert [m for _, m in mcts_problem.calls if m != "n"][:3] == ["a", "b", "c"]
    assert stuck_n is not None and (mcts_n is None or stuck_n < mcts_n)
    # off, after the first proof, or in a search from scout_net_from on: the network leads from the first
    # expansion
    asked.clear()
    for kw in ({"stuck": False}, {"scout": False}, {"scout_net": True}):
        search, problem, n = run(evaluator, **kw)
        assert n == 1 and problem.calls == [("R", "c")] and search.root.v_net == -50.0
    with pytest.raises(ConfigError, match="scout_net_from"):
        MCTSConfig(scout_net_from=0)
    with pytest.raises(ConfigError, match="scout_net_every"):
        MCTSConfig(scout_net_from=3, scout_net_every=0)


def test_net_value_off_uses_the_default_leaf_value():
    # an evaluator whose value head says "50 steps left" everywhere: with net_value=False the leaves get
    # default_value instead, the policy logits still shape the prior
    def evaluator(state, ms):
        return np.arange(len(ms), dtype=float), -50.0

    for net_value, expected in ((True, -50.0), (False, 0.0)):
        search = Search(Toy(ALL_TREE), MCTSConfig(net_value=net_value, rank_lambda=0.0), StepCache(), evaluator)
        search.simulate()
        assert search.root.v_net == expected
        assert np.argmax(search.root.prior) == len(search.root.methods) - 1  # the largest logit


def test_scout_net_value_applies_only_before_the_first_proof():
    def evaluator(state, ms):
        return np.zeros(len(ms)), -50.0

    cfg = MCTSConfig(scout_net_value=False)
    for scout, expected in ((True, 0.0), (False, -50.0)):
        search = Search(Toy(ALL_TREE), cfg, StepCache(), evaluator, scout=scout)
        search.simulate()
        assert search.root.v_net == expected
    # None (the default): the same in both phases
    search = Search(Toy(ALL_TREE), MCTSConfig(net_value=False), StepCache(), evaluator, scout=True)
    search.simulate()
    assert search.root.v_net == 0.0


def test_scout_rank_lambda_applies_only_before_the_first_proof():
    cfg = MCTSConfig(rank_lambda=0.0, scout_rank_lambda=2.0)
    flat = priors(np.zeros(2), cfg)
    for scout in (True, False):
        search = Search(Toy(ALL_TREE), cfg, StepCache(), scout=scout)
        search.simulate()
        expected = priors(np.zeros(2), cfg, 2.0) if scout else flat
        np.testing.assert_allclose(search.root.prior, expected)
    assert priors(np.zeros(2), cfg, 2.0)[0] > 0.85 and flat[0] == 0.5
    with pytest.raises(ConfigError, match="scout_rank_lambda"):
        MCTSConfig(scout_rank_lambda=-0.1)


# exists-trace: a's first case A runs into an endless chain, its second case B reaches a trace in 2 steps;
# b (rank 1) reaches a trace in 1 step
DFS_TREE = {f"C{k}": [("n", [("", f"C{k + 1}")])] for k in range(100)}
DFS_TREE.update({
    "R": [("a", [("A", "C0"), ("B", "N1")]), ("b", [("", "T2")])],
    "N1": [("t", [("", "N2")])],
    "N2": [("u", [("", "T1")])],
})


def _trace_scout(tree, cap, sims=60):
    problem = Toy(tree, exists=True)
    cfg = MCTSConfig(scout_trace_dfs=True, rank_lambda=0.5, expand_top_n=2)
    search = Search(problem, cfg, StepCache(), scout=True, depth_cap=cap)
    search.run(sims, lambda: True)
    return search, problem


def test_scout_trace_dfs_follows_the_first_open_case_down_to_the_bound():
    search, problem = _trace_scout(DFS_TREE, cap=4)
    assert search.top_n == 1 and search.depth_cap == 4
    assert search.root.proved and search.root.trace
    # depth first: case A down to the bound (4 steps: a, n, n, n), then case B; b is never executed
    assert [m for _, m in problem.calls] == ["a", "n", "n", "n", "t", "u"]
    assert extract(search.root).size() == 4  # a, t, u and the trace
    # the same search without the option spreads over both cases and executes b at the root (top-2)
    toy = Toy(DFS_TREE, exists=True)
    plain = Search(toy, MCTSConfig(rank_lambda=0.5, expand_top_n=2), StepCache(), scout=True)
    plain.run(60, lambda: True)
    assert plain.depth_cap is None and plain.root.trace and ("R", "b") in toy.calls
    # off outside scouting and for all-traces lemmas
    cfg = MCTSConfig(scout_trace_dfs=True)
    assert Search(Toy(DFS_TREE, exists=True), cfg, StepCache(), scout=False, depth_cap=4).depth_cap is None
    assert Search(Toy(DFS_TREE), cfg, StepCache(), scout=True, depth_cap=4).depth_cap is None


def test_scout_trace_dfs_bound_cuts_without_failing_and_keeps_to_the_chosen_method():
    # only the endless chain below a's only case: the bound cuts it, the root is capped (not failed) and,
    # as s, b is not tried in place of a: the search stops early, the next one (deeper bound) goes on
    tree = dict(DFS_TREE, R=[("a", [("A", "C0")]), ("b", [("", "T2")])])
    search, problem = _trace_scout(tree, cap=3)
    assert search.root.capped and not search.root.failed and not search.root.proved
    assert [m for _, m in problem.calls] == ["a", "n", "n"]
    assert sum(e.visits for e in search.root.edges if e is not None) < 10  # stopped, not 60 simulations


def test_scout_trace_dfs_deepens_per_search_on_the_engine(client_server, monkeypatch):
    caps = _record_searches(monkeypatch, lambda search, kw: (kw["scout"], search.depth_cap))
    base = dataclasses.replace(SMALL, simulations=40, searches=4, proofs=2, max_executions=200)
    plain = search_lemma(client_server, "setup_reachable", dataclasses.replace(base, scout_trace_dfs=False))
    assert all(c is None for _, c in caps)
    caps.clear()
    r = search_lemma(client_server, "setup_reachable", base)  # the default: on
    assert r.proved and r.size == plain.size
    assert r.executions_to_first_proof <= plain.executions_to_first_proof
    scouting = [c for scout, c in caps if scout]
    assert scouting == [4 * 2 ** k for k in range(len(scouting))] and len(scouting) >= 1
    assert all(c is None for scout, c in caps if not scout)


def test_search_proves_by_the_induction_that_greedy_s_never_takes():
    # hard_session_counter's lemmas need induction and carry no [use_induction]: s takes `simplify` at the
    # root and unfolds the Send loop without end; the search also executes `induction`, the root's second
    # method, and closes the lemma there.
    theory = parse_file(example_path("hard_session_counter"))
    lem = next(lem for lem in theory.lemmas if lem.name == "sent_after_open")
    greedy = prove(theory, lem, 40)
    assert greedy.verdict == INCOMPLETE
    r = search_lemma(theory, "sent_after_open", MCTSConfig(simulations=30, searches=3, proofs=1,
                                                           max_executions=150))
    assert r.verdict == VERIFIED
    assert r.proof.method == "induction" and r.size <= 8
    assert check_proof(theory, lem, r.proof).ok
