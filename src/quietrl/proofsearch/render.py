"""Rendering: goals in Tamarin's notation, found traces as readable text and as Graphviz ``.dot``.

Goal texts come from the solver in Tamarin's notation (``!KU( aenc(<'1', ~k>, pk(~ltkS)) ) @ #vk.1``,
``Client_1( S, k ) ▶₀ #i``, ``(#i < #j)  ∥ (#j < #i)``); :func:`normalise_goal` maps them to the form the
tests compare (index suffixes ``.n`` as ``.N``, variables renamed by first occurrence, whitespace collapsed).
A trace (ground rule instances in execution order, see :mod:`~quietrl.proofsearch.replay`) prints one step
per line; its graph has a node per step, solid edges for protocol facts (from the latest earlier step that
produced the fact) and dashed edges through the adversary for ``Out``/``In``. ``write_dot`` renders a PNG
next to the ``.dot`` file only where Graphviz's ``dot`` is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from quietrl.core.io import atomic_write_text

_VAR_RE = re.compile(r"(?<![\w'])([~$#]?)([A-Za-z_][A-Za-z0-9_]*)(\.\d+)?(?![\w'(])")


def _rename(text: str, names: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        key = m.group(0)
        if m.group(1) == "" and m.group(3) is None and key in _WORDS:
            return key
        if key not in names:
            names[key] = f"v{len(names) + 1}"
        return m.group(1) + names[key]

    # Quoted constants ('1', 'c') and function symbols (followed by "(") are left alone.
    parts = re.split(r"('[^']*')", text)
    return "".join(p if p.startswith("'") else _VAR_RE.sub(sub, p) for p in parts)


_WORDS = frozenset({"case", "last", "from", "to"})


def normalise_goal(text: str, rename: bool = True) -> str:
    """``text`` with whitespace collapsed and ``.n`` suffixes as ``.N``; with ``rename``, variables (sort
    prefix kept) renamed ``v1, v2, ...`` by first occurrence in this text."""
    t = " ".join(text.split())
    if not rename:
        return re.sub(r"\.\d+", ".N", t)
    return _rename(t, {})


def normalise_goal_list(texts: list[str]) -> tuple[str, ...]:
    """A goal list as compared with Tamarin's: variables renamed by first occurrence across the whole
    list (one oracle call), whitespace collapsed inside each goal."""
    names: dict[str, str] = {}
    return tuple(_rename(" ".join(t.split()), names) for t in texts)


def trace_text(trace) -> str:
    """A trace as text: one numbered rule instance per line."""
    return "\n".join(f"{i:3d}: {step}" for i, step in enumerate(trace))


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("{", "\\{").replace("}", "\\}") \
        .replace("<", "\\<").replace(">", "\\>").replace("|", "\\|")


def trace_dot(trace, title: str = "trace") -> str:
    """Graphviz source of a trace (module docstring): deterministic, one node per step."""
    lines = [f'digraph "{title}" {{', "  rankdir=TB;", '  node [shape=record, fontsize=10];',
             '  adv [shape=ellipse, label="adversary"];']
    produced: list[tuple[int, object]] = []  # (step, fact) of protocol conclusions still available
    for i, st in enumerate(trace):
        prem = " | ".join(_esc(str(f)) for f in st.premises) or " "
        act = " | ".join(_esc(str(f)) for f in st.actions) or " "
        conc = " | ".join(_esc(str(f)) for f in st.conclusions) or " "
        lines.append(f'  s{i} [label="{{{{{prem}}} | {i}: {_esc(st.rule)} | {{{act}}} | {{{conc}}}}}"];')
        for f in st.premises:
            if f.name == "In":
                lines.append(f'  adv -> s{i} [style=dashed, label="{_esc(str(f.args[0]))}"];')
                continue
            for k in range(len(produced) - 1, -1, -1):
                j, g = produced[k]
                if g == f:
                    lines.append(f"  s{j} -> s{i};")
                    if not f.persistent:
                        produced.pop(k)
                    break
        for f in st.conclusions:
            if f.name == "Out":
                lines.append(f'  s{i} -> adv [style=dashed, label="{_esc(str(f.args[0]))}"];')
            else:
                produced.append((i, f))
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_dot(trace, path: str | Path, title: str = "trace") -> Path | None:
    """Write the ``.dot`` file; render ``<path>.png`` with Graphviz if ``dot`` is installed (else None)."""
    path = Path(path)
    atomic_write_text(path, trace_dot(trace, title))
    dot = shutil.which("dot")
    if dot is None:
        return None
    png = path.with_suffix(".png")
    proc = subprocess.run([dot, "-Tpng", str(path), "-o", str(png)], capture_output=True, check=False)
    return png if proc.returncode == 0 else None
