"""``quietrl proofsearch ...``: thin commands over the parser and the constraint-system API."""

from __future__ import annotations

import json as _json

import click

from quietrl.core.errors import UserError


@click.group(name="proofsearch")
def cli() -> None:
    """Tamarin-style proof search for Diffie-Hellman-free .spthy theories (partial solver)."""


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
@click.option("--heuristic", type=click.Choice(["s", "C"]), default="s", show_default=True,
              help="Goal ranking: C (goal age) or s (a first approximation of Tamarin's smart ranking).")
@click.option("--max-steps", type=click.IntRange(1), default=500, show_default=True,
              help="Step budget per lemma; past it the lemma is 'analysis incomplete'.")
@click.option("--script/--no-script", default=False, help="Print each proof in Tamarin's proof-script syntax.")
def prove_cmd(file: str, lemmas: tuple[str, ...], heuristic: str, max_steps: int, script: bool) -> None:
    """Prove lemmas of FILE; print found traces and a Tamarin-style summary of summaries."""
    import time

    from quietrl.proofsearch.prover import prove_all
    from quietrl.proofsearch.prover import script as render

    th = _load(file)
    for name in lemmas:
        if th.lemma(name) is None:
            names = ", ".join(lem.name for lem in th.lemmas) or "none"
            raise UserError(f"{file}: unknown lemma {name!r} (lemmas: {names})")
    t0 = time.perf_counter()
    results = prove_all(th, list(lemmas) if lemmas else None, max_steps, heuristic)
    wall = time.perf_counter() - t0
    for r in results:
        if script:
            click.echo(f"lemma {r.lemma}:")
            click.echo(render(r.tree, 2))
        if r.trace:
            click.echo(f"trace for {r.lemma} (replayed and checked):")
            for i, st in enumerate(r.trace):
                click.echo(f"  {i}: {st}")
        if r.reason:
            click.echo(f"note: {r.lemma}: {r.reason}")
    bar = "=" * 78
    click.echo(bar)
    click.echo("summary of summaries:\n")
    click.echo(f"analyzed: {file}\n")
    click.echo(f"  processing time: {wall:.2f}s\n")
    for r in results:
        click.echo(r.summary_line())
    click.echo(bar)


@cli.command("examples")
def examples_cmd() -> None:
    """List the example theories bundled with the package (and their paths)."""
    from quietrl.proofsearch.examples import example_names, example_path

    for name in example_names():
        click.echo(f"{name}\t{example_path(name)}")
