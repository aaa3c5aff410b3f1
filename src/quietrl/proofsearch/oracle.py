"""External goal oracles with Tamarin's I/O (heuristics ``o`` and ``O``).

At every proof step that needs a choice, the oracle program is executed with the lemma name as its only
argument (``argv[1]``); its stdin holds one line per open goal, ``N: <goal>`` with N counting from 0 and the
goal printed as in proof scripts without ``solve( )`` and without line breaks (UTF-8, trailing newline; the
list may be empty, e.g. at the root before ``simplify``). ``o`` sends the goals in age order (``C``), ``O`` in
``s`` order. The program prints goal indices, one per line: listed goals come first in that order, the rest
follow in input order; lines that are not an in-range index (or repeat one) are ignored; empty output keeps
the input order. A non-zero exit status, a missing program or a timeout aborts the proof with a one-line
``UserError``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

from quietrl.core.errors import UserError


def goal_lines(goal_texts: list[str]) -> str:
    """The oracle's stdin: ``N: <goal>`` per goal, line breaks inside goals removed, trailing newline."""
    return "".join(f"{i}: {' '.join(t.split())}\n" for i, t in enumerate(goal_texts))


def apply_ranking(n: int, stdout: str) -> list[int]:
    """The goal order an oracle's ``stdout`` selects among ``n`` goals (Tamarin's rules, module docstring)."""
    chosen: list[int] = []
    for line in stdout.splitlines():
        s = line.strip()
        if s.isdigit() or (s.startswith("+") and s[1:].isdigit()):
            k = int(s)
            if k < n and k not in chosen:
                chosen.append(k)
    return chosen + [i for i in range(n) if i not in chosen]


@dataclasses.dataclass
class Oracle:
    """An oracle program (a path to an executable) used for one lemma; counts its calls."""

    path: str
    timeout_s: float = 120.0
    calls: int = 0

    def __post_init__(self) -> None:
        p = Path(self.path)
        if not p.is_file():
            raise UserError(f"oracle {self.path}: no such file")
        if not os.access(p, os.X_OK):
            raise UserError(f"oracle {self.path}: not executable (chmod +x it and give it a #! line)")

    def order(self, lemma: str, goal_texts: list[str]) -> list[int]:
        """Run the oracle once on ``goal_texts``; the permutation of goal indices it selects."""
        self.calls += 1
        cmd = [str(Path(self.path).resolve()), lemma]
        try:
            proc = subprocess.run(cmd, input=goal_lines(goal_texts).encode("utf-8"), capture_output=True,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"oracle {self.path}: no answer within {self.timeout_s:g} s "
                            f"(lemma {lemma})") from None
        except OSError as e:
            raise UserError(f"oracle {self.path}: cannot execute ({e.strerror})") from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            tail = f": {err[-1]}" if err else ""
            raise UserError(f"oracle {self.path} exited with status {proc.returncode} (lemma {lemma}){tail}")
        return apply_ranking(len(goal_texts), proc.stdout.decode("utf-8", "replace"))


def find_oracle(theory_path: str | None, given: str | None) -> str:
    """The oracle to use: ``given`` (relative to the working directory), else ``<theory>.oracle`` next to
    the theory file, else ``./oracle``; a ``UserError`` if none exists."""
    if given:
        return given
    tried = []
    if theory_path:
        p = Path(theory_path)
        tried.append(p.with_suffix(".oracle"))
    tried.append(Path("oracle"))
    for p in tried:
        if p.is_file():
            return str(p)
    raise UserError("heuristic o/O needs an oracle: give --oracle PATH (tried "
                    + ", ".join(str(p) for p in tried) + ")")
