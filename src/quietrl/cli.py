"""The ``quietrl`` command line: ``reproduce``, ``report`` and one command group per sub-package.

Sub-package groups come from the static table in :mod:`quietrl.registry` and are imported only when their
command runs, so ``--help``, ``--version`` and input errors answer without importing JAX or a sub-package.
Bad input ends with one line ``error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from quietrl import __version__
from quietrl.core.errors import UserError
from quietrl.registry import BY_NAME, NAMES, SUBPACKAGES

_BUILTIN = ("reproduce", "report")


class _LazyGroup(click.Group):
    """A group whose sub-package commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*_BUILTIN, *NAMES]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in BY_NAME:
            return None
        import importlib

        sub = BY_NAME[name]
        try:
            module = importlib.import_module(sub.cli_module)
        except ModuleNotFoundError as e:
            if e.name in (f"quietrl.{name}", sub.cli_module):
                return _not_implemented(name)
            raise
        return module.cli

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, self.commands[n].get_short_help_str(limit=90)) for n in _BUILTIN]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        with formatter.section("Sub-packages (quietrl NAME --help)"):
            formatter.write_dl([(s.name, f"{s.help} [arXiv:{s.arxiv}]") for s in SUBPACKAGES])


def _not_implemented(name: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def stub() -> None:
        raise UserError(f"quietrl {name} is not implemented yet")

    stub.help = f"{BY_NAME[name].help} (not implemented yet)"
    return stub


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="quietrl", message="%(prog)s %(version)s")
def cli() -> None:
    """quietrl: six RL results from May 2026 as tested, benchmarked software.

    Start with `quietrl reproduce --quick`, which runs a reduced reproduction of every sub-package and
    writes an HTML report.
    """


def _parse_only(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise UserError(f"--only: no sub-package named; choose from: {', '.join(NAMES)}")
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise UserError(f"--only: unknown sub-package {', '.join(map(repr, unknown))}; "
                        f"choose from: {', '.join(NAMES)}")
    return [n for n in NAMES if n in names]  # table order, no duplicates


@cli.command()
@click.option("--quick", is_flag=True, help="Reduced run of each sub-package (minutes, not hours).")
@click.option("--only", metavar="NAME,...", help=f"Run only these sub-packages ({', '.join(NAMES)}).")
@click.option("--out", "out", metavar="RUN_DIR", help="Run directory to create (default runs/<UTC time>).")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed; printed and recorded.")
@click.option("--resume", metavar="RUN_DIR", help="Resume an interrupted run: finished stages are kept.")
@click.option("--executor", default="local", show_default=True, metavar="local|ray",
              help="Where sweeps run: local processes or a Ray cluster.")
@click.option("--ray-address", metavar="ADDR", help="Ray cluster address (default: a local Ray instance).")
@click.pass_context
def reproduce(ctx: click.Context, quick: bool, only: str | None, out: str | None, seed: int,
              resume: str | None, executor: str, ray_address: str | None) -> None:
    """Run the reproduction of every sub-package and write report.html."""
    from quietrl.core.sweep import EXECUTORS

    selected = _parse_only(only)
    if executor not in EXECUTORS:
        raise UserError(f"--executor: unknown executor {executor!r}; choose from: {', '.join(EXECUTORS)}")
    options = {"quick": quick, "only": selected, "seed": seed, "executor": executor, "ray_address": ray_address}

    from quietrl.core.runs import RunDir

    if resume is not None:
        run = RunDir.open(resume)
        stored = run.config
        given = {k for k in ("quick", "only", "seed", "executor", "ray_address")
                 if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
        if out is not None and click.format_filename(out) != click.format_filename(resume):
            raise UserError(f"--out {out} differs from --resume {resume}; a resumed run stays in its directory")
        diff = [k for k in sorted(given) if stored.get(k) != options[k]]
        if diff:
            shown = ", ".join(f"--{k.replace('_', '-')} {options[k]!r} (run has {stored.get(k)!r})" for k in diff)
            raise UserError(f"--resume {resume}: options differ from the run's config.json: {shown}")
        options = {k: stored.get(k, options[k]) for k in options}
        run.log("run resumed")
    else:
        run = RunDir.create(out, {k: v for k, v in options.items() if k != "seed"}, seed)

    from quietrl.core.sweep import make_executor

    pool = make_executor(options["executor"], ray_address=options["ray_address"])
    subs = options["only"] or list(NAMES)
    click.echo(f"quietrl reproduce: run directory {run.path}, seed {options['seed']}, "
               f"{'quick' if options['quick'] else 'full'} run of {', '.join(subs)}", err=True)
    failed = []
    for name in subs:
        status = _run_subpackage(run, name, options["quick"], options["seed"], pool)
        if status == "failed":
            failed.append(name)

    from quietrl.core.report import build_report

    report = build_report(run)
    click.echo(f"report: {report}", err=True)
    if failed:
        click.echo(f"failed: {', '.join(failed)} (see {run.path / 'log.txt'})", err=True)
        ctx.exit(1)


def _run_subpackage(run: Any, name: str, quick: bool, seed: int, executor: Any) -> str:
    """Run one sub-package's reproduction, recording its status; never lets its failure stop the others."""
    import importlib
    import traceback

    prev = run.sub_status(name)
    if prev and prev.get("status") == "done":  # a sub-package "not implemented" then may exist now
        click.echo(f"[{name}] already done, skipped", err=True)
        return "done"
    sub = BY_NAME[name]
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(sub.experiment_module)
    except ModuleNotFoundError as e:
        if e.name in (f"quietrl.{name}", sub.experiment_module):
            run.write_sub_status(name, "not_implemented")
            run.log(f"[{name}] not implemented yet")
            click.echo(f"[{name}] not implemented yet", err=True)
            return "not_implemented"
        module = None
        err = f"{type(e).__name__}: {e}"
        tb = traceback.format_exc()
    else:
        err = tb = None
    if module is not None:
        click.echo(f"[{name}] running", err=True)
        run.write_sub_status(name, "running")
        try:
            module.reproduce(run, quick, seed, executor)
        except KeyboardInterrupt:
            run.write_sub_status(name, "interrupted", time.perf_counter() - t0)
            raise
        except Exception as e:  # noqa: BLE001 - one sub-package's failure must not stop the others
            err = f"{type(e).__name__}: {e}"
            tb = traceback.format_exc()
    wall = time.perf_counter() - t0
    if err is not None:
        run.write_sub_status(name, "failed", wall, err)
        run.log(f"[{name}] failed after {wall:.1f} s\n{tb}")
        click.echo(f"[{name}] failed after {wall:.1f} s: {err}", err=True)
        return "failed"
    run.write_sub_status(name, "done", wall)
    run.log(f"[{name}] done in {wall:.1f} s")
    click.echo(f"[{name}] done in {wall:.1f} s", err=True)
    return "done"


@cli.command()
@click.argument("run_dir", metavar="RUN_DIR")
def report(run_dir: str) -> None:
    """(Re)build RUN_DIR/report.html from what a run wrote."""
    from quietrl.core.report import build_report

    click.echo(str(build_report(run_dir)))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning bad input into one line on stderr and exit code 2."""
    try:
        rv = cli.main(args=argv, prog_name="quietrl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.UsageError as e:
        where = f"{e.ctx.command_path}: " if e.ctx is not None else ""
        click.echo(f"error: {where}{e.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
