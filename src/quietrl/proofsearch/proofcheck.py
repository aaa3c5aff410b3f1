"""A proof checker independent of the search: replay a proof tree or a proof script with ``apply``.

``check_proof(theory, lemma, node)`` starts from ``initial_system`` and, at every step of the tree,
confirms that the method is one that ``methods(state)`` offers, that the tree's case names are cases that
``apply`` produces (and, unless the proof is a found trace cut to its path, that no case is missing), and
that every leaf closes: ``by contradiction`` on a contradictory system (with the same reason), ``SOLVED`` on
a system without open goals whose trace the forward replayer accepts as a witness for the verdict, and a
step written ``by <method>`` whose cases all died. ``sorry`` leaves are problems.

``check_script(theory, lemma, text)`` parses Tamarin's proof-script syntax (``simplify``, ``induction``,
``solve( goal )``, ``case NAME`` ... ``next`` ... ``qed``, ``by contradiction /* reason */``,
``SOLVED // trace found``, ``by sorry``), as :func:`quietrl.proofsearch.prover.script` prints it and as
Tamarin writes it (a ``lemma ...:`` header and its formula before the first step are skipped, wrapped goal
lines are joined), and checks the tree it describes.
"""

from __future__ import annotations

import dataclasses
import re

from quietrl.proofsearch.types import Lemma, Theory

_STEP_RE = re.compile(r"^(simplify|induction|solve\(.*\))$")
_KEYWORDS = ("case ", "next", "qed", "by ", "SOLVED", "sorry", "simplify", "induction", "solve(")


@dataclasses.dataclass
class ScriptNode:
    """A proof-tree node read from a script: a step (``method`` text and cases) or a leaf.

    ``leaf`` is ``contradiction``, ``solved`` or ``sorry`` for leaves (``note`` holds the comment);
    ``line`` is the 1-based script line of the step or leaf (for messages).
    """

    method: str | None = None
    cases: list[tuple[str, "ScriptNode"]] = dataclasses.field(default_factory=list)
    leaf: str | None = None
    note: str = ""
    line: int = 0

    def size(self) -> int:
        """Tamarin's proof size: steps and closing leaves (contradiction, SOLVED) count once each."""
        own = 1 if self.method is not None or self.leaf in ("contradiction", "solved") else 0
        return own + sum(c.size() for _, c in self.cases)


@dataclasses.dataclass
class CheckReport:
    """Outcome of a check: ``ok`` iff ``problems`` is empty; ``steps`` replayed; ``trace_found`` if a
    confirmed ``SOLVED`` leaf was reached."""

    ok: bool
    problems: list[str]
    steps: int = 0
    trace_found: bool = False


class ScriptError(ValueError):
    """A malformed proof script (the message starts with ``line N:``)."""


# ---------------------------------------------------------------- parsing


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Non-empty lines with their numbers, ``//`` comments on step lines kept, wrapped goals joined."""
    raw = text.splitlines()
    out: list[tuple[int, str]] = []
    started = False
    for no, line in enumerate(raw, 1):
        s = line.strip()
        if not s:
            continue
        if not started:
            if not s.startswith(_KEYWORDS) or s.startswith(("case ", "next", "qed")):
                continue  # a lemma header and its formula
            started = True
        if out and not s.startswith(_KEYWORDS):
            prev_no, prev = out[-1]
            # A goal that Tamarin wrapped over several lines: join it to its solve( line.
            if prev.startswith(("solve(", "by solve(")) and _depth(prev) > 0:
                out[-1] = (prev_no, prev + " " + s)
                continue
            if prev.startswith("by ") and "/*" in prev and "*/" not in prev:
                out[-1] = (prev_no, prev + " " + s)
                continue
            if s == "end":
                break
            raise ScriptError(f"line {no}: unexpected text {s!r}")
        out.append((no, s))
    # Re-join wrapped goals whose continuation itself starts like a keyword is impossible to tell apart;
    # Tamarin only wraps inside terms, so a continuation never starts with one.
    return out


def _depth(s: str) -> int:
    """Open parentheses left at the end of ``s`` (quoted constants ignored): > 0 inside a wrapped goal."""
    depth, quoted = 0, False
    for ch in s:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
    return depth


def _comment(s: str) -> str:
    m = re.search(r"/\*\s*(.*?)\s*\*/", s)
    return m.group(1) if m else ""


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def parse_script(text: str) -> ScriptNode:
    """Parse a proof script into a :class:`ScriptNode` tree; raises :class:`ScriptError` if malformed."""
    lines = _logical_lines(text)
    if not lines:
        raise ScriptError("line 1: empty proof script")
    pos = 0

    def proof() -> ScriptNode:
        nonlocal pos
        if pos >= len(lines):
            raise ScriptError(f"line {lines[-1][0]}: the script ends inside a proof")
        no, s = lines[pos]
        pos += 1
        if s.startswith("SOLVED"):
            return ScriptNode(leaf="solved", line=no)
        if s == "sorry" or s.startswith("by sorry"):
            return ScriptNode(leaf="sorry", note=_comment(s), line=no)
        if s.startswith("by contradiction"):
            return ScriptNode(leaf="contradiction", note=_comment(s), line=no)
        if s.startswith("by "):
            step = _squash(re.sub(r"/\*.*?\*/", "", s[3:]))
            if not _STEP_RE.match(step):
                raise ScriptError(f"line {no}: unknown step {step!r}")
            return ScriptNode(method=step, line=no)
        step = _squash(re.sub(r"//.*$", "", s))
        if not _STEP_RE.match(step):
            raise ScriptError(f"line {no}: expected a proof step, found {s!r}")
        node = ScriptNode(method=step, line=no)
        if pos < len(lines) and lines[pos][1].startswith("case "):
            while True:
                cno, cs = lines[pos]
                if not cs.startswith("case "):
                    raise ScriptError(f"line {cno}: expected 'case NAME', found {cs!r}")
                pos += 1
                node.cases.append((cs[len("case "):].strip(), proof()))
                if pos >= len(lines):
                    raise ScriptError(f"line {lines[-1][0]}: missing 'qed' for the step on line {no}")
                nno, ns = lines[pos]
                pos += 1
                if ns == "qed":
                    break
                if ns != "next":
                    raise ScriptError(f"line {nno}: expected 'next' or 'qed', found {ns!r}")
        else:
            node.cases.append(("", proof()))
        return node

    root = proof()
    if pos != len(lines):
        no, s = lines[pos]
        raise ScriptError(f"line {no}: text after the end of the proof: {s!r}")
    return root


def analyzed_proofs(text: str) -> list[tuple[str, str]]:
    """(lemma name, proof script) for every lemma of a Tamarin ``*_analyzed.spthy`` output, in file order.

    The proof is what follows the comment holding the guarded formula, up to the next lemma, rule,
    restriction, the closing comments or ``end``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("lemma ")]
    out = []
    for k, i in enumerate(starts):
        name = lines[i][len("lemma "):].split(":")[0].split()[0]
        block = lines[i:starts[k + 1] if k + 1 < len(starts) else len(lines)]
        for j, line in enumerate(block):
            if j and (line.startswith(("rule ", "restriction ", "end", "/* All wellformed", "/* Output"))):
                block = block[:j]
                break
        close = next((j for j, line in enumerate(block) if line.strip() == "*/"), None)
        body = block[close + 1:] if close is not None else block
        # A comment block after the proof (e.g. wellformedness warnings) is not part of it.
        stop = next((j for j, line in enumerate(body) if line.startswith("/*")), len(body))
        out.append((name, "\n".join(body[:stop])))
    return out


# ---------------------------------------------------------------- checking


def _lemma(theory: Theory, lemma: Lemma | str) -> Lemma:
    from quietrl.core.errors import UserError

    if isinstance(lemma, Lemma):
        return lemma
    found = theory.lemma(lemma)
    if found is None:
        raise UserError(f"theory {theory.name} has no lemma {lemma!r}")
    return found


def _has_solved(node) -> bool:
    return node.leaf == "solved" or any(_has_solved(c) for _, c in node.cases)


def check_proof(theory: Theory, lemma: Lemma | str, node) -> CheckReport:
    """Replay a proof tree (a :class:`~quietrl.proofsearch.prover.ProofNode` or :class:`ScriptNode`).

    Every step must be offered and executable, every case name one that the step produces, every leaf
    closed (see the module docstring). A tree holding a ``SOLVED`` leaf may leave out sibling cases (a proof
    cut to its trace); any other tree must cover every case.
    """
    from quietrl.proofsearch.prover import confirm_trace
    from quietrl.proofsearch.system import apply, initial_system, methods

    lem = _lemma(theory, lemma)
    problems: list[str] = []
    cut = _has_solved(node)
    stats = {"steps": 0, "trace": False}

    def where(path: tuple[str, ...], n) -> str:
        at = "/".join(p or "·" for p in path) or "root"
        line = getattr(n, "line", 0)
        return f"{at}" + (f" (line {line})" if line else "")

    def walk(state, n, path: tuple[str, ...]) -> None:
        if n.method is None:
            status = state.status
            if n.leaf == "contradiction":
                if status != "contradictory":
                    problems.append(f"{where(path, n)}: 'by contradiction' but the system is {status}")
                elif n.note and n.note != state.constraints.contradiction:
                    problems.append(f"{where(path, n)}: contradiction /* {n.note} */ but the system is "
                                    f"contradictory /* {state.constraints.contradiction} */")
            elif n.leaf == "solved":
                if status != "solved":
                    problems.append(f"{where(path, n)}: SOLVED but the system is {status}")
                else:
                    why, _ = confirm_trace(theory, lem, state)
                    if why:
                        problems.append(f"{where(path, n)}: SOLVED but {why}")
                    else:
                        stats["trace"] = True
            else:
                problems.append(f"{where(path, n)}: open leaf (sorry{': ' + n.note if n.note else ''})")
            return
        offered = {_squash(m.text()): m for m in methods(state)}
        m = offered.get(_squash(n.method))
        if m is None:
            if state.status != "open":
                problems.append(f"{where(path, n)}: step {n.method} on a {state.status} system")
            else:
                problems.append(f"{where(path, n)}: step {n.method} is not offered here")
            return
        stats["steps"] += 1
        try:
            produced = apply(state, m)
        except NotImplementedError as e:
            problems.append(f"{where(path, n)}: step {n.method} does not execute ({e})")
            return
        by_name = dict(produced)
        names = [name for name, _ in n.cases]
        for name in names:
            if name not in by_name:
                problems.append(f"{where(path, n)}: {n.method} has no case {name!r} (its cases: "
                                f"{', '.join(repr(x) for x, _ in produced) or 'none'})")
        if len(set(names)) != len(names):
            problems.append(f"{where(path, n)}: a case name appears twice")
        if not cut:
            missing = [name for name, _ in produced if name not in names]
            if missing:
                problems.append(f"{where(path, n)}: {n.method} leaves case(s) {', '.join(missing)} unproved")
        for name, child in n.cases:
            if name in by_name:
                walk(by_name[name], child, path + (name,))

    walk(initial_system(theory, lem, "C"), node, ())
    if cut and not stats["trace"] and not any("SOLVED" in p for p in problems):
        problems.append("the proof is cut to a trace that was not confirmed")
    return CheckReport(not problems, problems, stats["steps"], stats["trace"])


def check_script(theory: Theory, lemma: Lemma | str, text: str) -> CheckReport:
    """Parse a proof script (Tamarin's syntax) and check it with :func:`check_proof`."""
    try:
        tree = parse_script(text)
    except ScriptError as e:
        return CheckReport(False, [str(e)])
    return check_proof(theory, lemma, tree)
