"""The ``provenance`` command line.

    provenance audit [AUDIT_FILE] [--candidate M] [--reference M ...] [--control M ...] --out DIR
    provenance report DIR             re-render a report from the store, offline
    provenance verify DIR             recompute the report from the store and compare
    provenance batteries [list|show NAME|validate DIR]

Bad input ends with one line, ``error: <what> ...; <fix>``, and exit status 2: never a
traceback. An interrupted audit keeps what it collected; run the same command to resume.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import ProvenanceError


def _fail(msg: str, code: int = 2):
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)


class _Group(click.Group):
    def invoke(self, ctx):
        from .errors import CollectionIncomplete

        try:
            return super().invoke(ctx)
        except CollectionIncomplete as e:
            for line in e.lines[:-1]:
                click.echo(f"error: {line}", err=True)
            click.echo(f"{'stopped' if e.at_cap else 'error'}: {e.lines[-1]}", err=True)
            sys.exit(3 if e.at_cap else 2)
        except ProvenanceError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted; what was collected is stored, run the same command again to resume", 130)


@click.group(cls=_Group)
@click.version_option(package_name="provenance")
def main():
    """Whose behaviour does a language model carry? Audit a candidate against references and
    independent controls; report similarity, baseline and excess with confidence intervals."""


@main.command()
@click.argument("audit_file", required=False, type=click.Path(dir_okay=False))
@click.option("--candidate", help="model string of the model under investigation, e.g. hf/path/to/model")
@click.option("--reference", "references", multiple=True, help="model it may have learned from (repeatable)")
@click.option("--control", "controls", multiple=True, help="model believed independent (repeatable)")
@click.option("--battery", "batteries", multiple=True,
              help="battery name or folder (repeatable); transcripts:<scorer> scores the prompts transcripts share")
@click.option("--samples", type=int, help="samples per prompt (default: each battery's own)")
@click.option("--seed", type=int, help="seed of sampling and of the bootstrap (default 0)")
@click.option("--n-resamples", type=int, help="bootstrap resamples (default 9999)")
@click.option("--store", "store", type=click.Path(dir_okay=False), help="SQLite store to use (default OUT/store.sqlite)")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="audit directory for store and report")
@click.option("--quiet", is_flag=True, help="no progress bars")
@click.option("--max-cost", type=float, help="stop API calls before this run spends more USD (needs prices in the audit file)")
@click.option("--max-requests", type=int, help="stop after this many API calls (retries included) in this run")
@click.option("--collect-only", is_flag=True, help="only collect answers into the store; `provenance report OUT` analyses")
@click.option("--executor", "executor_kind", type=click.Choice(["local", "ray"]),
              help="where local models generate: here (local, the default) or on a Ray cluster (ray)")
@click.option("--address", help="Ray cluster to join (auto, HOST:PORT or ray://HOST:10001); default: start one here")
@click.option("--ray-workers", type=int, help="Ray actors (model replicas) per model (default 1)")
def audit(audit_file, candidate, references, controls, batteries, samples, seed, n_resamples, store, out, quiet,
          max_cost=None, max_requests=None, collect_only=False, executor_kind=None, address=None, ray_workers=None):
    """Run an audit (from AUDIT_FILE and/or flags) and write report.{json,md,html} into OUT."""
    from .audit import load_spec_file, make_spec, resolve_paths, run_audit
    from .executors import executor_settings, make_executor

    data, base, where = {}, Path.cwd(), "command line"
    if audit_file:
        data, base = load_spec_file(audit_file)
        where = audit_file
    ex = data.pop("executor", None) or {}
    if not isinstance(ex, dict):
        raise click.UsageError("executor in the audit file must be a table (kind, address, workers, ...)")
    ex.update({k: v for k, v in {"kind": executor_kind, "address": address, "workers": ray_workers}.items()
               if v is not None})
    if (address or ray_workers) and ex.get("kind", "local") == "local":
        raise click.UsageError("--address and --ray-workers need --executor ray")
    executor = make_executor(executor_settings(ex, where=where))
    overrides = {"candidate": candidate, "references": list(references) or None, "controls": list(controls) or None,
                 "batteries": list(batteries) or None, "samples": samples, "seed": seed, "n_resamples": n_resamples,
                 "store": store}
    data.update({k: v for k, v in overrides.items() if v is not None})
    if "candidate" not in data:
        raise click.UsageError("give an audit file or --candidate and at least one --reference")
    spec = resolve_paths(make_spec(data, where=where), base)
    limits = None
    if max_cost is not None or max_requests is not None:
        from .fetch import Limits

        limits = Limits(max_cost=max_cost, max_requests=max_requests)
    report = run_audit(spec, out, progress=not quiet, limits=limits, analyse=not collect_only, executor=executor)
    if collect_only:
        c = report["collection"]
        click.echo(f"collected {c['requests']} answers ({c['cached']} already stored); "
                   f"run `provenance report {out}` for the report")
        return
    _print_summary(report, Path(out))


@main.command()
@click.argument("audit_dir", type=click.Path(file_okay=False))
def report(audit_dir):
    """Re-render the report of AUDIT_DIR from its store, asking no model."""
    from .audit import load_audit_dir, run_audit

    spec = load_audit_dir(audit_dir)
    rep = run_audit(spec, audit_dir, progress=False, collect_missing=False)
    _print_summary(rep, Path(audit_dir))


@main.command()
@click.argument("audit_dir", type=click.Path(file_okay=False))
def verify(audit_dir):
    """Recompute every hash and number of AUDIT_DIR's report from its store, offline, and say
    whether the report still matches (exit 0), or what differs (exit 1)."""
    from .report.verify import verify_audit

    if not (Path(audit_dir) / "report.json").exists():
        raise click.UsageError(f"{audit_dir}: no report.json; give the --out folder of an audit")
    result = verify_audit(audit_dir)
    for line in result.lines():
        click.echo(line)
    sys.exit(0 if result.ok else 1)


def _print_summary(report: dict, out: Path) -> None:
    from .summary import summary_lines

    for line in summary_lines(report):
        click.echo(line)
    click.echo(f"report: {out / 'report.html'}  (also report.json, report.md)")


@main.group(invoke_without_command=True)
@click.pass_context
def batteries(ctx):
    """List, show or validate probe batteries."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_batteries_cmd)


@batteries.command("list")
def list_batteries_cmd():
    """List the shipped batteries."""
    from .battery import list_batteries

    for b in list_batteries():
        click.echo(f"{b.name:10s} v{b.version:8s} {len(b.prompts):4d} prompts  scorer={b.scorer:8s} {b.content_hash[:12]}  {b.description}")


@batteries.command("show")
@click.argument("name")
def show_battery(name):
    """Show a battery's settings and prompts."""
    from .battery import load_battery

    b = load_battery(name)
    g = b.generation
    click.echo(f"{b.name} v{b.version} ({b.path})\n{b.description}\nscorer: {b.scorer}\ncontent hash: {b.content_hash}")
    click.echo(f"generation: samples={g.samples} temperature={g.temperature} top_p={g.top_p} max_new_tokens={g.max_new_tokens}")
    for p in b.prompts:
        tags = " ".join(f"{k}={v}" for k, v in p.tags.items())
        click.echo(f"  {p.id:14s} [{p.language}] {tags:24s} {p.text}")


@batteries.command("validate")
@click.argument("path", type=click.Path())
def validate_battery(path):
    """Check a battery folder against the schema."""
    from .battery import load_battery

    b = load_battery(path)
    click.echo(f"ok: {b.name} v{b.version}, {len(b.prompts)} prompts, scorer {b.scorer}, content hash {b.content_hash}")


@main.command()
@click.argument("models", nargs=-1)
@click.option("--transcripts", "transcripts", type=click.Path(dir_okay=False),
              help="take every model of this transcripts file (.jsonl or .jsonl.gz) into the pool")
@click.option("--candidate", "candidates", multiple=True, help="label of a pool model to rank possible teachers for (repeatable)")
@click.option("--control", "controls", multiple=True, help="label of a pool model believed independent (repeatable)")
@click.option("--battery", "batteries", multiple=True, help="battery name or folder, or transcripts:<scorer> (repeatable)")
@click.option("--samples", type=int, help="samples per prompt (default: each battery's own)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of sampling and of the bootstrap")
@click.option("--n-resamples", type=int, default=9999, show_default=True, help="bootstrap resamples")
@click.option("--store", type=click.Path(dir_okay=False), help="SQLite store to use (default OUT/store.sqlite)")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="directory for store and report")
@click.option("--quiet", is_flag=True, help="no progress bars")
def compare(models, transcripts, candidates, controls, batteries, samples, seed, n_resamples, store, out, quiet):
    """Pool mode: pairwise similarities of many MODELS (model strings) with intervals and, for
    each --candidate, a ranking of the others as possible teachers; writes report.{json,md,html}."""
    from .compare import labelled, run_compare, transcript_models

    pool = dict(transcript_models(transcripts)) if transcripts else {}
    for label, s in labelled(list(models)).items():
        pool.setdefault(label, s)
    if len(pool) < 2:
        raise click.UsageError("give at least two model strings, or --transcripts FILE")
    rep = run_compare(pool, out, batteries=list(batteries) or None, candidates=list(candidates),
                      controls=list(controls), seed=seed, n_resamples=n_resamples, samples=samples, store=store,
                      progress=not quiet)
    for r in rep["rankings"]:
        click.echo(f"{r['candidate']}: ranked by {r['score']}")
        for e in r["entries"][:5]:
            s = e["score"]
            click.echo(f"  {e['rank']:2d}. {e['reference']:28s} {s['estimate'] if s['estimate'] is not None else float('nan'):.3f} "
                       f"first in {100 * e['p_first']:.1f}% of replicates")
    click.echo(f"report: {Path(out) / 'report.html'}  (also report.json, report.md)")


@main.command()
@click.argument("audit_dir", type=click.Path(file_okay=False))
@click.option("--half-width", type=float, help="target half-width of the excess interval (default: the pilot's own)")
@click.option("--effect", type=float, help="excess to detect, for power (default: the pilot's estimate)")
@click.option("--power", type=float, default=0.8, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True, help="one-sided level of the permutation test")
@click.option("--samples", "sample_options", default="1,2,4,8,16", show_default=True,
              help="samples per prompt to plan for, comma-separated")
def plan(audit_dir, half_width, effect, power, alpha, sample_options):
    """Plan a full audit from a pilot AUDIT_DIR: prompts (and samples) needed for an interval
    half-width or for power, and the API calls that costs. Asks no model; writes plan.json."""
    import json

    from .analysis import load_battery_data, plan as make_plan
    from .audit import STORE_FILE, build_models, load_audit_dir
    from .battery import resolve_batteries
    from .store import Store

    spec = load_audit_dir(audit_dir)
    models, roles, _ = build_models(spec)
    cand = next(k for k, r in roles.items() if r == "candidate")
    refs = [k for k, r in roles.items() if r == "reference"]
    ctls = [k for k, r in roles.items() if r == "control"]
    if not ctls:
        raise click.UsageError("the pilot has no controls, so there is no baseline to plan an excess for")
    bats = resolve_batteries(spec.batteries, models)
    with Store(Path(spec.store) if spec.store else Path(audit_dir) / STORE_FILE) as store:
        datas = [load_battery_data(b, models, store, samples=spec.samples) for b in bats]
    opts = tuple(int(x) for x in sample_options.split(",") if x.strip())
    rows = make_plan(datas, cand, refs, ctls, pilot_samples={b.name: spec.samples or b.generation.samples for b in bats},
                     half_width=half_width, effect=effect, power=power, alpha=alpha, sample_options=opts)
    for r in rows:
        click.echo(f"{r.battery} vs {r.reference} ({r.scale} scale): pilot {r.pilot_prompts} prompts x "
                   f"{r.pilot_samples} samples, excess {r.pilot_estimate:.3f} +- {r.pilot_half_width:.3f}; "
                   f"sd between prompts {r.sd_between:.3f}, within {r.sd_within:.3f}, between models {r.sd_models:.3f}")
        hw = r.half_width if r.half_width else r.pilot_half_width
        for o in r.options:
            click.echo(f"  {o.samples:3d} samples: {o.prompts_for_half_width or '-'} prompts for +-{hw:.3f} "
                       f"({o.calls_for_half_width or '-'} calls); {o.prompts_for_power or '-'} prompts for power "
                       f"{r.power:g} at effect {r.effect if r.effect else float('nan'):.3f} ({o.calls_for_power or '-'} calls)")
        if r.note:
            click.echo(f"  note: {r.note}")
    (Path(audit_dir) / "plan.json").write_text(json.dumps([r.to_dict() for r in rows], indent=1) + "\n")
    click.echo(f"plan: {Path(audit_dir) / 'plan.json'}")
    for m in models.values():
        m.close()


if __name__ == "__main__":
    main()
