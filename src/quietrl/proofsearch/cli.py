"""``quietrl proofsearch ...``: thin commands over the parser and the constraint-system API."""

from __future__ import annotations

import dataclasses
import json as _json

import click

from quietrl.core.config import set_option
from quietrl.core.errors import UserError


@click.group(name="proofsearch")
def cli() -> None:
    """Tamarin-style proof search for Diffie-Hellman-free .spthy theories, and RL over its proof methods."""


def _load(file: str):
    from quietrl.proofsearch.parser import parse_file

    theory = parse_file(file)
    for w in theory.warnings:
        click.echo(w, err=True)
    return theory


@cli.command("parse")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def parse_cmd(file: str, as_json: bool) -> None:
    """Parse FILE and summarise its signature, rules (with variant counts), restrictions and lemmas."""
    from quietrl.proofsearch import terms as T
    from quietrl.proofsearch.variants import rule_variants

    th = _load(file)
    R = T.RewriteSystem(th.signature.equations)
    summary = {
        "theory": th.name,
        "builtins": list(th.signature.builtins),
        "functions": [f"{f.name}/{f.arity}" + (" [private]" if f.private else "")
                      for f in th.signature.functions if f.name != "pair"],
        "equations": [str(e) for e in th.signature.equations if e.origin == "user"],
        "rules": [{"name": r.name, "variants": len(rule_variants(r, th.signature, R))} for r in th.rules],
        "restrictions": [r.name for r in th.restrictions],
        "lemmas": [{"name": lem.name, "kind": lem.trace_quantifier,
                    "attributes": [a for a, on in (("sources", lem.sources), ("reuse", lem.reuse),
                                                   ("use_induction", lem.use_induction)) if on]}
                   for lem in th.lemmas],
        "warnings": len(th.warnings),
    }
    if as_json:
        click.echo(_json.dumps(summary, indent=2, ensure_ascii=False))
        return
    click.echo(f"theory {th.name}")
    click.echo(f"  builtins:     {', '.join(summary['builtins']) or '-'}")
    click.echo(f"  functions:    {', '.join(summary['functions'])}")
    if summary["equations"]:
        click.echo(f"  equations:    {'; '.join(summary['equations'])}")
    click.echo(f"  rules ({len(th.rules)}):")
    for r in summary["rules"]:
        click.echo(f"    {r['name']}  ({r['variants']} variant{'s' if r['variants'] != 1 else ''})")
    click.echo(f"  restrictions: {', '.join(summary['restrictions']) or '-'}")
    click.echo(f"  lemmas ({len(th.lemmas)}):")
    for lem in summary["lemmas"]:
        attrs = f" [{', '.join(lem['attributes'])}]" if lem["attributes"] else ""
        click.echo(f"    {lem['name']}{attrs} ({lem['kind']})")
    click.echo(f"  warnings:     {summary['warnings']}")


@cli.command("goals")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--lemma", "lemma_name", required=True, help="Lemma whose initial constraint system to show.")
@click.option("--simplify", "do_simplify", is_flag=True, help="Show the system after the root simplify step.")
def goals_cmd(file: str, lemma_name: str, do_simplify: bool) -> None:
    """Show the initial constraint system of a lemma (or the one after simplify) and its proof methods."""
    from quietrl.proofsearch.formulas import show
    from quietrl.proofsearch.system import Method, apply, initial_system, methods

    th = _load(file)
    lemma = th.lemma(lemma_name)
    if lemma is None:
        names = ", ".join(lem.name for lem in th.lemmas) or "none"
        raise UserError(f"{file}: unknown lemma {lemma_name!r} (lemmas: {names})")
    state = initial_system(th, lemma)
    if do_simplify:
        try:
            ((_, state),) = apply(state, Method("simplify"))
        except NotImplementedError as e:
            raise UserError(f"{file}: lemma {lemma_name}: simplify needs a solver feature not implemented yet "
                            f"({e})") from None
    label = ("formula (guarded, characterising all counter-examples)" if lemma.trace_quantifier == "all-traces"
             else "formula (guarded, traces to find)")
    click.echo(f"lemma {lemma.name} ({lemma.trace_quantifier})")
    click.echo(f"{label}:")
    for f in state.formulas:
        click.echo(f"  {show(f)}")
    if state.restrictions:
        click.echo("restrictions:")
        for f in state.restrictions:
            click.echo(f"  {show(f)}")
    if state.simplified:
        cs = state.constraints
        click.echo(f"after simplify: {len(cs.nodes)} node(s), status {state.status}"
                   + (f" (contradiction: {cs.contradiction})" if cs.contradiction else ""))
        for n, inst in cs.nodes:
            click.echo(f"  {n} : {inst.name}")
    click.echo(f"goals: {len(state.goals)}" + ("" if state.goals or state.simplified else " (none before simplify)"))
    for i, g in enumerate(state.goals):
        click.echo(f"  {i}: {g.text}")
    click.echo("methods (ranked by an approximation of s):" if state.simplified else "methods (ranked):")
    for i, m in enumerate(methods(state)):
        click.echo(f"  {i}: {m.text()}")


@cli.command("prove")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--lemma", "lemmas", multiple=True, help="Lemma to prove (repeatable); default: all.")
@click.option("--heuristic", type=click.Choice(["s", "S", "c", "C", "o", "O"]), default=None,
              help="Goal ranking (Tamarin's): s smart (default), S smart without loop breakers, c/C by "
                   "usefulness/age, o/O an external oracle over the C/s order. Overrides [heuristic=] and "
                   "heuristic: in the theory.")
@click.option("--oracle", "oracle_path", type=click.Path(dir_okay=False), default=None,
              help="Oracle program for o/O (default: <theory>.oracle, then ./oracle).")
@click.option("--bound", type=click.IntRange(0), default=None, help="Cap the proof depth (Tamarin's --bound).")
@click.option("--open-chains", type=click.IntRange(0), default=10, show_default=True,
              help="Open chains resolved while saturating sources (Tamarin's --open-chains).")
@click.option("--saturation", type=click.IntRange(0), default=5, show_default=True,
              help="Saturation rounds of the sources (Tamarin's --saturation).")
@click.option("--max-steps", type=click.IntRange(1), default=500, show_default=True,
              help="Step budget per lemma; past it the lemma is 'analysis incomplete'.")
@click.option("--script/--no-script", default=False, help="Print each proof in Tamarin's proof-script syntax.")
@click.option("--dot", "dot_dir", type=click.Path(file_okay=False), default=None,
              help="Write each found trace as DIR/<lemma>.dot (and .png where Graphviz is installed).")
@click.option("--check-proofs", is_flag=True,
              help="Re-check every settled proof with the independent proof checker (replays each step).")
def prove_cmd(file: str, lemmas: tuple[str, ...], heuristic: str | None, oracle_path: str | None,
              bound: int | None, open_chains: int, saturation: int, max_steps: int, script: bool,
              dot_dir: str | None, check_proofs: bool) -> None:
    """Prove lemmas of FILE; print proofs, found traces and a Tamarin-style summary of summaries."""
    import time
    from pathlib import Path

    from quietrl.proofsearch.oracle import Oracle, find_oracle
    from quietrl.proofsearch.proofcheck import check_proof
    from quietrl.proofsearch.prover import INCOMPLETE, prove_all, resolve_heuristic
    from quietrl.proofsearch.prover import script as render_script
    from quietrl.proofsearch.render import trace_text, write_dot

    th = _load(file)
    for name in lemmas:
        if th.lemma(name) is None:
            names = ", ".join(lem.name for lem in th.lemmas) or "none"
            raise UserError(f"{file}: unknown lemma {name!r} (lemmas: {names})")
    # Tamarin's precedence: --heuristic > the lemma's [heuristic=] > the theory's heuristic: line > s.
    wanted = [th.lemma(n) for n in lemmas] if lemmas else list(th.lemmas)
    chosen = {resolve_heuristic(th, lem, heuristic) for lem in wanted}
    oracle = None
    if chosen & {"o", "O"}:
        oracle = Oracle(find_oracle(file, oracle_path))
    elif oracle_path:
        raise UserError(f"--oracle {oracle_path}: only heuristics o and O use an oracle")
    t0 = time.perf_counter()
    results = prove_all(th, list(lemmas) if lemmas else None, max_steps, heuristic, oracle=oracle, bound=bound,
                        open_chains=open_chains, saturation=saturation)
    wall = time.perf_counter() - t0
    for r in results:
        if script:
            click.echo(f"lemma {r.lemma}:")
            click.echo(render_script(r.tree, 2))
        if r.trace:
            click.echo(f"trace for {r.lemma} (replayed and checked):")
            click.echo(trace_text(r.trace))
            if dot_dir:
                png = write_dot(r.trace, Path(dot_dir) / f"{r.lemma}.dot", r.lemma)
                click.echo(f"graph: {Path(dot_dir) / (r.lemma + '.dot')}" + (f" ({png})" if png else ""))
        if r.reason:
            click.echo(f"note: {r.lemma}: {r.reason}")
        if check_proofs and r.verdict != INCOMPLETE:
            rep = check_proof(th, r.lemma, r.tree)
            click.echo(f"proof check: {r.lemma}: " + ("ok" if rep.ok else "FAILED: " + "; ".join(rep.problems[:3])))
    bar = "=" * 78
    click.echo(bar)
    click.echo("summary of summaries:\n")
    click.echo(f"analyzed: {file}\n")
    click.echo(f"  processing time: {wall:.2f}s\n")
    for r in results:
        click.echo(r.summary_line())
    click.echo("")
    click.echo(bar)


@cli.command("examples")
def examples_cmd() -> None:
    """List the example theories bundled with the package (and their paths)."""
    from quietrl.proofsearch.examples import example_names, example_path

    for name in example_names():
        click.echo(f"{name}\t{example_path(name)}")


# ---- RL side (issue 9: evaluate, serve, export-oracle) -- owned by the RL engineer; keep this block last ----


@cli.command("evaluate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--lemma", "lemmas", multiple=True, help="Only these lemmas (default: all).")
@click.option("--arms", default="s,c,mcts,mcts_net,oracle_net", show_default=True,
              help="Comma list of arms: s, c, mcts, mcts_net, oracle_net.")
@click.option("--min-budget", "min_budget_s", type=float, default=60.0, show_default=True,
              help="Per-lemma budget floor in seconds (budget = max(10 x time of s, this)).")
@click.option("--budget", type=click.Choice(["time", "executions"]), default="time", show_default=True,
              help="time: max(10 x time of s, --min-budget) s; executions: max(--exec-factor x work of s, "
                   "--exec-min) engine method executions (load-independent), equal for every arm.")
@click.option("--exec-factor", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="--budget executions: executions per unit of work of s (benchmarks/proofsearch_rl.py: 6).")
@click.option("--exec-min", type=int, default=150, show_default=True, help="--budget executions: the floor.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write records.jsonl, summary.json, table.txt and sizes.png here.")
@set_option
def evaluate_cmd(files: tuple[str, ...], lemmas: tuple[str, ...], arms: str, min_budget_s: float, budget: str,
                 exec_factor: float, exec_min: int, seed: int, out_dir: str | None,
                 overrides: tuple[str, ...]) -> None:
    """Compare greedy s/c, MCTS, MCTS + learnt ranker and the ranker as an oracle on FILES.

    --set overrides a field of the MCTS arms' MCTSConfig, e.g. --set searches=10 --set scout_net_when_stuck=false.
    """
    from pathlib import Path

    from quietrl.core.config import apply_overrides
    from quietrl.core.io import atomic_write_json, atomic_write_text
    from quietrl.proofsearch.evaluate import EvalConfig, evaluate_theory, figure, summarise, table

    cfg = EvalConfig(arms=tuple(a.strip() for a in arms.split(",") if a.strip()), min_budget_s=min_budget_s,
                     budget=budget, exec_factor=exec_factor, exec_min=exec_min)
    cfg = dataclasses.replace(cfg, mcts=apply_overrides(cfg.mcts, overrides))
    records = []
    for f in files:
        th = _load(f)
        names = [lem.name for lem in th.lemmas if not lemmas or lem.name in lemmas]
        for name in lemmas:
            if th.lemma(name) is None and len(files) == 1:
                raise UserError(f"{f}: unknown lemma {name!r}; choose from {', '.join(x.name for x in th.lemmas)}")
        records += evaluate_theory(th, cfg, seed, names)
    click.echo(table(records))
    summary = summarise(records)
    click.echo(_json.dumps(summary, indent=1))
    if out_dir:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / "records.jsonl", "".join(_json.dumps(r) + "\n" for r in records))
        atomic_write_json(d / "summary.json", summary)
        atomic_write_text(d / "table.txt", table(records) + "\n")
        fig = figure(records)
        fig.savefig(d / "sizes.png", dpi=120)
        click.echo(f"wrote {d}")


@cli.command("serve")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (non-local needs --token).")
@click.option("--port", type=int, default=0, show_default=True, help="0 = a free port chosen by the OS.")
@click.option("--token", default=None, envvar="QUIETRL_PROOFSEARCH_TOKEN",
              help="Shared token every request must carry (Authorization: Bearer ...).")
def serve_cmd(files: tuple[str, ...], host: str, port: int, token: str | None) -> None:
    """Serve the proof-search environment of FILES over HTTP/JSON until interrupted."""
    from quietrl.proofsearch.server import ProofServer, ServerConfig

    theories = {}
    for f in files:
        th = _load(f)
        theories[th.name] = th
    srv = ProofServer(theories, ServerConfig(host=host, port=port, token=token))
    click.echo(f"serving {', '.join(sorted(theories))} at {srv.url}", err=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.httpd.server_close()


@cli.command("export-oracle")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for the oracle script and the model.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-executions", type=int, default=400, show_default=True,
              help="Engine method executions per lemma while training.")
def export_oracle_cmd(files: tuple[str, ...], out_dir: str, seed: int, max_executions: int) -> None:
    """Train the ranker by expert iteration on FILES and export it as a Tamarin oracle script."""
    from quietrl.proofsearch.expert import Learner, train_online
    from quietrl.proofsearch.mcts import MCTSConfig
    from quietrl.proofsearch.oracle_export import export_oracle

    learner = Learner()
    cfg = MCTSConfig(max_executions=max_executions, rank_lambda=0.0)
    for f in files:
        th = _load(f)
        train_online(th, [lem.name for lem in th.lemmas], cfg, learner, seed)
    path = export_oracle(learner, out_dir)
    click.echo(f"oracle: {path}  (tamarin-prover --heuristic=O --oraclename={path} ...)")
