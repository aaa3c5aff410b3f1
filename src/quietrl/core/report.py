"""The HTML report: one self-contained ``report.html`` per run, a ``section#<name>`` per sub-package with our
numbers next to the paper's and every figure embedded (base64 PNG), so the file can be mailed or archived.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from quietrl.core.io import atomic_write_text, read_json
from quietrl.core.runs import RunDir
from quietrl.core.summary import Row, format_value
from quietrl.registry import SUBPACKAGES

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2330;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{border-bottom:2px solid #dde3ee;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.meta{color:#5b6477;font-size:.9rem}
table{border-collapse:collapse;font-size:.88rem;margin:.4rem 0 1rem}
th,td{border:1px solid #dde3ee;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f6fb} td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{display:inline-block;border-radius:.8rem;padding:.05rem .6rem;font-size:.8rem;font-weight:600}
.done{background:#dcf5e3;color:#185c2c}.failed{background:#fbe0e0;color:#8a1c1c}
.not_implemented,.skipped,.running,.interrupted{background:#eceff4;color:#4a5263}
figure{display:inline-block;margin:.4rem 1rem .8rem 0;vertical-align:top}
figure img{max-width:520px;border:1px solid #eef1f6}
figcaption{font-size:.8rem;color:#5b6477}
pre{background:#f7f8fb;padding:.5rem;overflow-x:auto;font-size:.8rem}
"""

_STATUS_TEXT = {
    "done": "done", "failed": "failed", "not_implemented": "not implemented yet", "skipped": "not run",
    "running": "unfinished", "interrupted": "interrupted",
}


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _badge(status: str) -> str:
    return f'<span class="status {_esc(status)}">{_esc(_STATUS_TEXT.get(status, status))}</span>'


def _rows_table(rows: list[Row]) -> str:
    if not rows:
        return "<p class='meta'>No summary rows.</p>"
    head = ("<tr><th>quantity</th><th>ours</th><th>95% CI</th><th>paper</th><th>paper setting</th>"
            "<th>source</th><th>comparable</th></tr>")
    body = []
    for r in rows:
        ci = f"[{format_value(r.ci[0])}, {format_value(r.ci[1])}]" if r.ci else "–"
        body.append(
            f"<tr><td>{_esc(r.quantity)}</td><td class='num'>{_esc(format_value(r.ours))}</td>"
            f"<td class='num'>{_esc(ci)}</td><td class='num'>{_esc(format_value(r.paper))}</td>"
            f"<td>{_esc(r.paper_setting or '–')}</td><td>{_esc(r.source or '–')}</td>"
            f"<td>{'yes' if r.comparable else 'no'}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img alt='{_esc(path.stem)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_esc(path.stem)}</figcaption></figure>")


def _section(run: RunDir, sub: Any, run_subs: list[str] | None) -> str:
    status = run.sub_status(sub.name)
    stages = run.stages(sub.name)
    if status is None:
        state = "skipped" if (run_subs is not None and sub.name not in run_subs) else (
            "done" if stages and all(s.done for s in stages) else ("running" if stages else "skipped"))
        status = {"status": state}
    parts = [f"<section id='{_esc(sub.name)}'>",
             f"<h2>{_esc(sub.name)} {_badge(status['status'])}</h2>",
             f"<p class='meta'>{_esc(sub.title)} (arXiv:{_esc(sub.arxiv)})"]
    if status.get("wall_s") is not None:
        parts.append(f" · wall time {status['wall_s']:.1f} s")
    parts.append("</p>")
    if status.get("note"):
        parts.append(f"<p>{_esc(status['note'])}</p>")
    if status.get("error"):
        parts.append(f"<pre>{_esc(status['error'])}</pre>")
    if status["status"] == "not_implemented":
        parts.append("<p>This sub-package is not implemented yet; nothing was run and no numbers are shown.</p>")
    for st in stages:
        summary = st.summary() or {}
        st_status = summary.get("status", "done" if st.done else "running")
        wall = summary.get("wall_s")
        parts.append(f"<h3>{_esc(st.experiment)} · seed {st.seed} {_badge(st_status)}"
                     + (f" <span class='meta'>{wall:.1f} s</span>" if isinstance(wall, (int, float)) else "")
                     + "</h3>")
        if summary.get("error"):
            parts.append(f"<pre>{_esc(summary['error'])}</pre>")
        parts.append(_rows_table([Row.from_dict(r) for r in summary.get("rows", [])]))
        notes = (summary.get("extra") or {}).get("notes")
        if notes:
            parts.append(f"<p class='meta'>{_esc(notes)}</p>")
        figs = sorted(st.figures_dir.glob("*.png")) if st.figures_dir.is_dir() else []
        parts.extend(_figure(f) for f in figs)
    parts.append("</section>")
    return "\n".join(parts)


def build_report(run: RunDir | str | Path) -> Path:
    """(Re)build ``report.html`` in the run directory from what the run wrote; return its path."""
    if not isinstance(run, RunDir):
        run = RunDir.open(run)
    cfg = run.config
    try:
        versions = read_json(run.path / "versions.json")
    except (FileNotFoundError, json.JSONDecodeError):
        versions = {}
    run_subs = cfg.get("only")
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = " · ".join(f"<a href='#{s.name}'>{s.name}</a>" for s in SUBPACKAGES)
    ver = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "platform")
    body = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>quietrl report · {_esc(run.path.name)}</title><style>{_CSS}</style></head><body>",
        "<h1>quietrl reproduction report</h1>",
        f"<p class='meta'>run {_esc(run.path)} · seed {_esc(cfg.get('seed'))} · "
        f"{'quick' if cfg.get('quick') else 'full'} · built {stamp}</p>",
        f"<p class='meta'>{_esc(ver)}</p>",
        f"<nav>{nav}</nav>",
        "<p>Every number under “ours” comes from this run and can be repeated with the seed above; "
        "numbers under “paper” are constants cited from the paper with their source. “comparable” says "
        "whether our setting matches the paper's closely enough to compare directly.</p>",
    ]
    body.extend(_section(run, s, run_subs) for s in SUBPACKAGES)
    body.append("</body></html>")
    path = run.path / "report.html"
    atomic_write_text(path, "\n".join(body))
    return path
