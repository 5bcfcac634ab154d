"""Regenerate the results page's tables and figures of measured numbers from the committed records.

Run from the repository root:
     python -m tools.readme           (rewrite the generated blocks of docs/results.md)
     python -m tools.readme --check   (exit 1 and print a diff if docs/results.md is not what the records give)

The page (:data:`PAGE`, the documentation site's results page; the README links to it) holds every
generated block; every number it publishes comes from a committed record, never from a hand:

- ``docs/results_quick.json``: a quick run of the experiments (``python -m experiments --record``),
  shown between ``<!-- generated:experiments -->`` and ``<!-- /generated:experiments -->`` (each experiment's
  name links to its section), and one section per experiment (its claim, command, guide page and figures)
  between ``<!-- generated:figures -->`` and ``<!-- /generated:figures -->``;
- ``docs/benchmark_cpu.json``: the CPU benchmark (``python -m benchmarks``), shown between
  ``<!-- generated:benchmark-cpu -->`` and ``<!-- /generated:benchmark-cpu -->``; likewise
  ``docs/benchmark_gpu.json`` in ``benchmark-gpu`` (a sentence says when there is none);
- ``benchmarks/records/gridsearch.json``: ``GridSearchCV`` with ``n_jobs`` 1 and 2, with and without a shared
  persistent compilation cache (``python -m benchmarks._bench_gridsearch --out ...``), shown between
  ``<!-- generated:gridsearch -->`` and ``<!-- /generated:gridsearch -->`` (generated while that record exists);
- ``benchmarks/records/blocks.json``: each block's backward pass against ``jax.vjp``, and the batch-norm + dropout
  network's training step against plain JAX and PyTorch (``python -m benchmarks._bench_blocks --record``), shown
  between ``<!-- generated:blocks -->`` and ``<!-- /generated:blocks -->`` (generated while that record exists).

A table shows the headline rows flagged ``readme=True``; a record with no flagged row shows every row
with a verdict instead (and says so). Under each table a line names the record: file, mode, date,
machine, versions and git commit. ``tests/tools/test_readme_tables.py`` fails when the page and the records disagree.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import difflib
import hashlib
import json
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGE = "docs/results.md"  # where the generated blocks are (a MyST page of the site; figures sit beside it in docs/)
EXPERIMENTS_RECORD = "docs/results_quick.json"
BENCHMARK_RECORDS = {"benchmark-cpu": "docs/benchmark_cpu.json", "benchmark-gpu": "docs/benchmark_gpu.json"}
REGENERATE = "python -m experiments --record && python -m tools.readme"
GRIDSEARCH_RECORD = "benchmarks/records/gridsearch.json"
COLDSTART_RECORD = "benchmarks/records/coldstart.json"
BLOCKS_RECORD = "benchmarks/records/blocks.json"


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure the results page shows: ``results/<experiment>/<source>`` of a run, committed as ``docs/<name>``."""

    experiment: str
    source: str
    name: str
    width: int
    alt: str


README_FIGURES = (
    Figure("perceptron", "boundaries.png", "perceptron.png", 640, "decision boundaries: neuron on AND, OR, XOR; MLP on XOR"),
    Figure("nonlinear", "boundaries.png", "nonlinear.png", 640, "linear vs MLP on rings, moons, spirals"),
    Figure(
        "representation",
        "representation.png",
        "representation.png",
        640,
        "rings and two spirals in the input and in the last hidden layer",
    ),
    Figure("activations", "grad_norms.png", "grad_norms.png", 420, "per-layer gradient norms at init in a deep network"),
    Figure(
        "mean_field", "mean_field.png", "mean_field.png", 640, "tanh gradient profiles at init against the mean-field prediction"
    ),
    Figure("zero_centred", "zero_centred.png", "zero_centred.png", 640, "validation accuracy per epoch, sigmoid vs tanh"),
    Figure(
        "loss_speed", "loss_speed.png", "loss_speed.png", 420, "validation accuracy against steps, each loss at its best rate"
    ),
    Figure(
        "landscape",
        "landscape.png",
        "landscape.png",
        640,
        "loss along the line from init to solution, and on the plane of the SGD path",
    ),
    Figure(
        "mnist1d_sweep",
        "mnist1d_sweep.png",
        "mnist1d_sweep.png",
        640,
        "MNIST-1D sweep: validation accuracy per width and shift bound; test accuracy of the chosen settings",
    ),
    Figure("capacity", "capacity.png", "capacity.png", 420, "train vs test accuracy against parameter count"),
    Figure(
        "double_descent",
        "double_descent.png",
        "double_descent.png",
        420,
        "train and test error against parameters through the interpolation threshold",
    ),
    Figure("complexity", "complexity.png", "complexity.png", 640, "gradient time vs parameter count, log-log"),
    Figure(
        "bn_weight_scale",
        "bn_weight_scale.png",
        "bn_weight_scale.png",
        640,
        "train and validation accuracy against the initial weight scale, batch norm vs none",
    ),
    Figure(
        "bn_learning_rate",
        "bn_learning_rate.png",
        "bn_learning_rate.png",
        640,
        "validation accuracy against steps at each variant's best rate, and final accuracy against the rate",
    ),
    Figure(
        "norm_batch_size",
        "norm_batch_size.png",
        "norm_batch_size.png",
        640,
        "test accuracy against batch size: batch norm, layer norm, none",
    ),
    Figure(
        "bn_smoothness",
        "bn_smoothness.png",
        "bn_smoothness.png",
        640,
        "loss and gradient variation along the gradient during training, batch norm vs none",
    ),
    Figure(
        "dropout",
        "dropout.png",
        "dropout.png",
        640,
        "dropout: train and test accuracy against drop rate, against training-set size, and hidden-unit sparsity",
    ),
    Figure(
        "residual",
        "residual.png",
        "residual.png",
        640,
        "plain vs residual MLPs: train and test accuracy and gradient norms at init against depth",
    ),
    Figure(
        "l2_double_descent",
        "l2_double_descent.png",
        "l2_double_descent.png",
        640,
        "test and training error against width, λ = 0 vs λ chosen on validation",
    ),
    Figure(
        "chain_rule",
        "chain_rule.png",
        "chain_rule.png",
        640,
        "operations and time per gradient against depth: naive chain rule, backprop, finite differences",
    ),
)


# the guide page (docs/guide/<page>.md) that explains each experiment's claim
GUIDE = {
    "perceptron": "neuron",
    "linear_collapse": "mlp",
    "nonlinear": "mlp",
    "representation": "mlp",
    "activations": "activations",
    "mean_field": "activations",
    "zero_centred": "activations",
    "losses": "losses",
    "loss_speed": "losses",
    "gradients": "backprop",
    "chain_rule": "backprop",
    "complexity": "backprop",
    "landscape": "training",
    "digits": "training",
    "sklearn_compare": "training",
    "sweep": "many",
    "mnist1d": "training",
    "mnist1d_sweep": "many",
    "capacity": "overfitting",
    "double_descent": "overfitting",
    "l2_double_descent": "overfitting",
    "dropout": "blocks",
    "bn_weight_scale": "blocks",
    "bn_learning_rate": "blocks",
    "norm_batch_size": "blocks",
    "bn_smoothness": "blocks",
    "residual": "blocks",
}


def markers(name: str) -> tuple[str, str]:
    """The comment lines that open and close the generated block ``name``."""
    return f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"


def load(path: pathlib.Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no record {path}; see `python -m tools.readme --help`") from None


# ---------------------------------------------------------------------------------------------------------------------
# cells and rows


def cell(x: Any) -> str:
    """Markdown-table-safe text: ``|`` escaped, newlines flattened."""
    return " ".join(str("" if x is None else x).split()).replace("|", "\\|")


def holds(h: dict) -> str:
    """yes / **no** / blank; a verdict that algebra guarantees (``basis="algebra"``) says so."""
    ok = {True: "yes", False: "**no**", None: ""}[h.get("ok")]
    return f"{ok} (by algebra)" if ok and h.get("basis") == "algebra" else ok


def select(rows: Sequence[dict]) -> tuple[list[dict], bool]:
    """The rows flagged ``readme=True``; if none is, every row with a verdict. Returns (rows, fell_back)."""
    flagged = [h for h in rows if h.get("readme")]
    if flagged:
        return flagged, False
    return [h for h in rows if h.get("ok") is not None], True


# ---------------------------------------------------------------------------------------------------------------------
# provenance: where a table's numbers came from


def _fact(rec: dict, key: str) -> Any:
    """A run fact at the top of a record or under its ``run`` key."""
    if rec.get(key) is not None:
        return rec[key]
    run = rec.get("run")
    return run.get(key) if isinstance(run, dict) else None


def _date(rec: dict) -> str:
    d = _fact(rec, "date")
    if not d:
        return "date not recorded"
    try:
        t = datetime.datetime.fromisoformat(str(d).replace("Z", "+00:00"))
    except ValueError:
        return str(d)
    if t.tzinfo is not None:
        t = t.astimezone(datetime.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def _machine(rec: dict) -> str:
    m = _fact(rec, "machine")
    if isinstance(m, str):
        return m
    plat = rec.get("platform") or (m or {}).get("platform")
    if not isinstance(m, dict):
        return f"machine not recorded (JAX platform {plat})" if plat else "machine not recorded"
    cpu = m.get("cpu_model") or m.get("processor") or ""
    cpus = m.get("cpus_usable") or m.get("cpu_count")
    parts = [" ".join(p for p in (m.get("machine"), cpu) if p)]
    if cpus:
        parts.append(f"{cpus} CPU cores" + (f" of {m['cpu_count']}" if m.get("cpu_count") not in (None, cpus) else ""))
    if plat:
        kind = m.get("device_kind")
        parts.append(f"JAX on {plat}" + (f" ({kind})" if kind and str(kind).lower() != str(plat).lower() else ""))
    return ", ".join(p for p in parts if p) or "machine not recorded"


VERSIONS_SHOWN = (("python", "Python"), ("jax", "JAX"), ("torch", "PyTorch"), ("scikit-learn", "scikit-learn"))


def _versions(rec: dict) -> str:
    v = dict(_fact(rec, "versions") or {})
    for k in ("python", "jax"):
        v.setdefault(k, rec.get(k))
    torch = (rec.get("peers") or {}).get("torch") if isinstance(rec.get("peers"), dict) else None
    if isinstance(torch, dict) and torch.get("version"):
        v.setdefault("torch", torch["version"])
    return ", ".join(f"{label} {v[k]}" for k, label in VERSIONS_SHOWN if v.get(k))


def _commit(rec: dict) -> str:
    g = _fact(rec, "git")
    g = g if isinstance(g, dict) else {"commit": _fact(rec, "commit")}
    if not g.get("commit"):
        return "git commit not recorded"
    text = f"commit `{str(g['commit'])[:10]}`"
    changed = g.get("changed") or []
    if g.get("dirty"):
        n = len(changed)
        text += f" plus uncommitted changes to {n} file{'s' * (n != 1)}" if n else " plus uncommitted changes"
    return text


def provenance(rec: dict, path: str, fell_back: bool) -> str:
    """One line naming the record a table came from: file, mode, date, machine, versions, commit."""
    mode = _fact(rec, "mode") or "mode not recorded"
    seed = _fact(rec, "seed")
    parts = [f"{mode} mode" + (f", seed {seed}" if seed is not None else ""), _date(rec), _machine(rec)]
    parts += [p for p in (_versions(rec), _commit(rec)) if p]
    line = f"Generated from `{path}`: " + "; ".join(parts) + "."
    if fell_back:
        line += " No row of this record is flagged for the README, so every row with a verdict is shown."
    return line


# ---------------------------------------------------------------------------------------------------------------------
# the blocks


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(r) + " |" for r in rows]


def experiments_block(rec: dict, path: str = EXPERIMENTS_RECORD) -> str:
    """The experiment table (rows flagged for the README) and the line naming its record."""
    from experiments.__main__ import EXPERIMENTS

    exps: dict[str, dict] = rec.get("experiments") or {}
    if not exps:
        raise ValueError(f"{path} holds no experiments (is it a summary.json of `python -m experiments`?)")
    shown, fell_back = select([h for e in exps.values() for h in e.get("headline") or []])
    ids = {id(h) for h in shown}
    rows = []
    for name, e in exps.items():
        first = f"{{ref}}`{name} <exp-{name}>`"
        if e.get("error"):
            rows.append([first, f"**failed**: {cell(e['error'])}", "", "", ""])
            continue
        for h in e.get("headline") or []:
            if id(h) in ids:
                rows.append([first, cell(h.get("claim")), cell(h.get("text")), cell(h.get("anchor")), holds(h)])
                first = ""
    lines = _table(["experiment", "claim", "measured", "reference", "holds"], rows)
    lines += ["", provenance(rec, path, fell_back)]
    missing = [n for n in EXPERIMENTS if n not in exps]
    if missing:
        lines[-1] += " Not in this record: " + ", ".join(f"`{n}`" for n in missing) + "."
    return "\n".join(lines)


def figures_block(rec: dict) -> str:
    """One section per experiment of the record: a label (``exp-<name>``, what the guide links to), its claim,
    the command that runs it alone, the guide page that explains it, and its figures the page shows (each
    committed as docs/<name>, beside the page)."""
    from experiments.__main__ import describe

    exps = rec.get("experiments") or {}
    out = []
    for name, e in exps.items():
        out += [f"(exp-{name})=", f"### `{name}`", "", describe(name), ""]
        guide = f"; explained in {{doc}}`guide/{GUIDE[name]}`" if name in GUIDE else ""
        out += [f"Run it alone: `python -m experiments --only {name}`{guide}.", ""]
        for f in README_FIGURES:
            if f.experiment == name and any(g.get("file") == f.source for g in e.get("figures") or []):
                out += [f"```{{image}} {f.name}", f":width: {f.width}px", f":alt: {f.alt}", "```", ""]
    if not out:
        return "_The record has no experiments._"
    return "\n".join(out).rstrip("\n")


def benchmark_block(rec: dict | None, path: str) -> str:
    """A benchmark table (rows flagged for the README) and the line naming its record; a sentence if there is none."""
    if rec is None:
        return f"No record is committed (`{path}`)."
    shown, fell_back = select(rec.get("headline") or [])
    rows = [[cell(h.get("claim")), cell(h.get("text")), cell(h.get("anchor")), holds(h)] for h in shown]
    return "\n".join([*_table(["what", "measured", "target", "met"], rows), "", provenance(rec, path, fell_back)])


def _s(x: float | None) -> str:
    return "" if x is None else f"{x:.1f} s"


def _span(xs: Sequence[float] | None, fmt: str = "{:.2f}") -> str:
    if not xs:
        return "not recorded"
    lo, hi = min(xs), max(xs)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


GRIDSEARCH_ROWS = (  # (configuration, figure, what the row says)
    ("sklearn", "search_s", "scikit-learn's own `MLPClassifier` (reference)"),
    ("none", "search_s", "fnn.sklearn, no persistent compilation cache (the default before issue 28)"),
    ("none", "again_s", "fnn.sklearn, a second search in that process (its workers kept)"),
    ("startup", "search_s", "no search: only starting the workers, each importing JAX and fnn.sklearn"),
    ("cold", "search_s", "fnn.sklearn, shared cache, empty: the first run fills it"),
    ("warm", "search_s", "fnn.sklearn, shared cache filled by an earlier run"),
)


def gridsearch_block(rec: dict, path: str = GRIDSEARCH_RECORD) -> str:
    """``GridSearchCV`` times by ``n_jobs``, with and without a shared compilation cache, and the line naming the record."""
    st, med, fig = rec["settings"], rec["medians"], rec.get("readme") or {}
    jobs = st["n_jobs"]
    settings = 1
    for values in st["grid"].values():
        settings *= len(values)
    what = (
        f"`GridSearchCV` on digits: {settings} settings × {st['cv']} folds + refit, `hidden_layer_sizes="
        f"{tuple(st['hidden'])}`, `max_iter={st['max_iter']}`; first search of a fresh process"
    )
    rows = [[cell(label)] + [_s(med.get(f"{lib}/{j}", {}).get(f)) for j in jobs] for lib, f, label in GRIDSEARCH_ROWS]
    lines = _table([what] + [f"n_jobs={j}" for j in jobs], rows)
    env = " ".join(f"{k}={v}" for k, v in st["cache_env"].items())
    reps = min(len(v) for v in rec["samples"].values())
    verify = rec.get("verify") or {}
    note = (
        f"Medians of {reps} fresh processes per cell, configurations alternating (every sample is in the record); "
        f"load average {_span(fig.get('load'))} during the run (its own processes included). "
        f"The shared cache is JAX's persistent compilation cache, passed to joblib's workers through the "
        f"environment: `{env}`. The first search wrote "
        f"{_span(fig.get('cache_written_cold'), '{:.0f}')} files to it (JAX's entries, and in `fnn-executables/` "
        f"the training programs fnn keeps whole), the next {fig.get('cache_written_warm') or 'none'}"
    )
    if verify.get("worker_hits") is not None:
        note += (
            f"; in a warm n_jobs={verify['n_jobs']} search, {verify['tree_hits']} programs were loaded from it, "
            f"{verify['worker_hits']} of them by the workers (counted in the compilation log, `JAX_LOG_COMPILES=1`)"
        )
    lines += ["", note + ".", "", provenance(rec, path, False)]
    return "\n".join(lines)


COLDSTART_ROWS = (  # (configuration, what the row says)
    ("sklearn", "scikit-learn's own estimator (reference)"),
    ("none", "fnn.sklearn, no persistent cache (`FNN_SKLEARN_CACHE=0`; every process before issue 28)"),
    ("jax_cold", "fnn.sklearn, JAX's persistent cache alone, empty"),
    ("jax_warm", "fnn.sklearn, JAX's persistent cache alone, filled: traces and lowers, then loads"),
    ("cold", "fnn.sklearn as it ships, its cache empty: the first process on the machine compiles and keeps"),
    ("warm", "fnn.sklearn as it ships, its cache filled: every later process (a second script, a notebook kernel)"),
)


def coldstart_block(rec: dict, path: str = COLDSTART_RECORD) -> str:
    """First fits in fresh processes, scikit-learn against fnn.sklearn without, with a cold and a warm cache."""
    med, st = rec["medians"], rec["settings"]
    datasets = [d for d in med if d != "tour"]
    names = {"digits": "digits", "breast_cancer": "breast cancer", "diabetes": "diabetes (regressor)"}
    what = f"first `fit` in a fresh process, `max_iter={st['max_iter']}`"
    rows = []
    for config, label in COLDSTART_ROWS:
        row = [cell(label)]
        for d in datasets:
            t = f"{med[d][f'{config}_s']:.2f} s"
            row.append(t if config == "sklearn" else f"{t} ({med[d][f'{config}_ratio']:.2f}×)")
        rows.append(row)
    goal = st["targets"]
    rows.append(["issue 28's target, cold / warm cache"] + [f"≤ {goal[d]['cold']}× / ≤ {goal[d]['warm']}×" for d in datasets])
    lines = _table([what] + [names.get(d, d) for d in datasets], rows)
    reps = min(len(v) for v in rec["samples"].values())
    load = rec["machine"].get("load_average_start", [None])[0], rec["machine"].get("load_average_end", [None])[0]
    written = sorted({n for v in rec.get("cache_files_written", {}).values() for n in v})
    jax_written = sorted({n for v in rec.get("jax_cache_files_written", {}).values() for n in v})
    note = (
        f"Medians of {reps} fresh processes per cell, configurations alternating (every sample is in the record); "
        f"the ratio is over scikit-learn's median; 1-minute load average {load[0]:.2f} at the start, {load[1]:.2f} at the end. "
        f"Files a cold first fit wrote to the cache: {', '.join(map(str, written)) or 'none'} as it ships, "
        f"{', '.join(map(str, jax_written)) or 'none'} with JAX's cache alone. JAX keys its cache by the traced and "
        "lowered program, so with it alone a process still traces and lowers before it loads; fnn keeps the "
        "estimators' training program whole, under a key it computes without tracing (`fnn/train/_keep.py`)."
    )
    lines += ["", note]
    if "tour" in med:
        tour = med["tour"]
        lines += [
            "",
            f"The README's quick tour, as a script in a fresh process (its imports included): {tour['none_s']:.1f} s as "
            f"written; with `fnn.compilation_cache()` at its top {tour['cold_s']:.1f} s the first time and "
            f"{tour['warm_s']:.1f} s in every later process (issue 28's target: ≤ {st.get('tour_target_s', 3.5)} s cold).",
        ]
    lines += ["", provenance(rec, path, False)]
    return "\n".join(lines)


def _t(us: float | None) -> str:
    """A time given in µs, in µs below a millisecond, else in ms."""
    if us is None:
        return ""
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms" if us < 100_000 else f"{us / 1000:.0f} ms"


def _r(q: dict) -> str:
    """A median ratio and its interquartile range."""
    return f"{q['median']:.2f} ({q['iqr'][0]:.2f}–{q['iqr'][1]:.2f})"


def _hidden_layer(spec: dict | None) -> str:
    """A hidden layer of a recorded network spec (``Network.to_json``), as ``Linear → BatchNorm → relu → Dropout 0.5``."""
    names: list[str] = []
    for b in (spec or {}).get("blocks", []):
        kind = b.get("block")
        if kind == "Dense":
            if names:
                break
            names.append("Linear" + ("" if b.get("bias", True) else " (no bias)"))
        elif kind == "Activate":
            names.append(b["activation"]["name"])
        elif kind == "Dropout":
            names.append(f"Dropout {b['drop_rate']}")
        else:
            names.append(str(kind))
    return "each hidden layer " + " → ".join(names) if names else "network not recorded"


def blocks_bench_block(rec: dict, path: str = BLOCKS_RECORD) -> str:
    """Each block's backward pass against ``jax.vjp``, BatchNorm's closed form against its staged backward, and the
    network's training step against plain JAX and PyTorch; the line naming the record."""
    st, net = rec["settings"], rec["network"]
    target, diag = f"≤ {rec['targets']['block']}", rec.get("diagnostic_options")
    rows = []
    for b in rec["blocks"]:
        rows.append([f"`{cell(b['block'])}`", _t(b["manual_us"]), _t(b["autodiff_us"]), _r(b["ratio"]), target])
        rows[-1] += [holds({"ok": b["met"]})] + ([_r(b["dots_only_ratio"])] if diag else [])
    head = f"block, batch {st['batch']} × width {st['width']}: forward (train mode) + backward"
    cols = [head, "manual backward", "`jax.vjp`", "manual / vjp", "target", "met"]
    lines = _table(cols + (["manual / vjp, YNNPACK for dots only (diagnostic)"] if diag else []), rows)
    bn = rec["batchnorm_backward"]
    lines += [
        "",
        f"BatchNorm's backward pass alone (its forward's residuals given), the closed form against the staged chain rule "
        f"(`backward_staged`, CS231n's): {_t(bn['closed_us'])} vs {_t(bn['staged_us'])}, ratio {_r(bn['ratio'])}.",
        "",
    ]
    sizes, scan, tgt = "-".join(map(str, net["sizes"])), net["scan"], net["target"]
    rs = net["rows"]
    torch = net.get("torch")

    def line(label: str, name: str) -> list[str]:
        out = [label]
        for r in rs:
            ratio = f" ({r['vs_plain'][name]['median']:.2f}×)" if name in r["vs_plain"] else ""
            out.append(_t(r["us_per_step"][name]) + ratio)
        return out

    body = [
        line("plain JAX (`jax.value_and_grad` of a hand-written forward, optax), per jitted call", "plain JAX"),
        line('`fnn.make_step(net, ..., grad="manual")`, per call (/ plain JAX)', "fnn manual"),
        line('`fnn.make_step(..., grad="autodiff")`, per call (/ plain JAX)', "fnn autodiff"),
        line(f"inside one compiled `lax.scan` of {scan} steps, per step: plain JAX", "plain JAX, scan"),
        line("the same, fnn manual (/ plain JAX)", "fnn manual, scan"),
        line("the same, fnn autodiff (/ plain JAX)", "fnn autodiff, scan"),
    ]
    if diag:
        body += [
            line("diagnostic: the scan compiled with YNNPACK for dots only, plain JAX", "plain JAX, scan, dots only"),
            line("the same, fnn manual (/ plain JAX, same options)", "fnn manual, scan, dots only"),
        ]
    if torch:
        label = f"PyTorch {torch['version']} eager, alone in its own process, {torch['threads']} threads, per step"
        body.append(
            [label + " (its time / fnn manual's per call)"]
            + [f"{_t(r['torch_us'])} ({r['torch_us'] / r['us_per_step']['fnn manual']:.2f}×)" for r in rs]
        )
    body.append([f"every fnn / plain JAX ratio ≤ {tgt} (diagnostic rows aside)"] + [holds({"ok": r["met"]}) for r in rs])
    head = f"training step, {sizes}: {_hidden_layer(net.get('network'))}; SGD {st['lr']}"
    body = [[cell(b[0]), *b[1:]] for b in body]
    lines += _table([head] + [f"batch {r['batch']}" for r in rs], body)
    loads = bn["load"] + net["load"]
    n_samples = min(len(v) for b in rec["blocks"] for v in b["samples"].values())
    agree = max(v for r in rs for a in r["agreement"].values() for v in a.values())
    peer = "; PyTorch in a fresh process after each round's JAX passes" if torch else ""
    cores = (rec.get("machine") or {}).get("cpus_usable")
    shared = ""
    if cores and max(loads) > cores:
        shared = f" (above the machine's {cores} cores: other processes shared them during the run)"
    note = (
        f"Float32, jitted, warm. {st['rounds']} rounds of {st['passes']} passes, each timing every function compared "
        f"(order reversed every other pass{peer}): times are medians "
        f"of {n_samples} samples, ratios (× and in parentheses the interquartile range) medians of per-pass ratios. "
        f"Load average {_span(loads)} at the rounds' starts{shared}. Checks: each block's manual and `jax.vjp` results agree to "
        f"{max(b['max_rel_diff'] for b in rec['blocks']):.0e} (largest relative difference); one step of fnn and of the "
        f"plain-JAX step from the same weights, batch and dropout key agree to {agree:.0e} (loss, new weights, running averages)"
    )
    if diag:
        opts = " ".join(f"--{k}={v}" for k, v in diag.items())
        note += (
            f". Diagnostic (not a comparison with the targets): XLA:CPU hands reductions and elementwise work to its "
            f"YNNPACK library fusions by default; the diagnostic column and rows are the same programs compiled with `{opts}`, "
            f"which keeps those fusions for matrix products only"
        )
    lines += ["", note + ".", "", provenance(rec, path, False)]
    return "\n".join(lines)


def blocks(root: pathlib.Path = ROOT) -> dict[str, str]:
    """Every generated block, by marker name, from the committed records under ``root``."""
    rec = load(root / EXPERIMENTS_RECORD)
    out = {"experiments": experiments_block(rec), "figures": figures_block(rec)}
    for name, path in BENCHMARK_RECORDS.items():
        p = root / path
        out[name] = benchmark_block(load(p) if p.is_file() else None, path)
    if (root / GRIDSEARCH_RECORD).is_file():
        out["gridsearch"] = gridsearch_block(load(root / GRIDSEARCH_RECORD))
    if (root / BLOCKS_RECORD).is_file():
        out["blocks"] = blocks_bench_block(load(root / BLOCKS_RECORD))
    if (root / COLDSTART_RECORD).is_file():
        out["coldstart"] = coldstart_block(load(root / COLDSTART_RECORD))
    return out


def replace_blocks(text: str, generated: dict[str, str]) -> str:
    """``text`` with what lies between each pair of markers replaced; ValueError when a marker is missing or repeated."""
    for name, body in generated.items():
        start, end = markers(name)
        n_start, n_end = text.count(start), text.count(end)
        if n_start != 1 or n_end != 1:
            raise ValueError(
                f"{PAGE} must contain the line {start!r} once and then {end!r} once (found {n_start} and {n_end}); "
                f"put them around the {name} block"
            )
        i, j = text.index(start) + len(start), text.index(end)
        if j < i:
            raise ValueError(f"{PAGE}: {end!r} comes before {start!r}")
        text = text[:i] + "\n" + body.strip("\n") + "\n" + text[j:]
    return text


def generate(text: str, root: pathlib.Path = ROOT) -> str:
    """The page's text with its generated blocks rebuilt from the committed records under ``root``."""
    return replace_blocks(text, blocks(root))


def figure_problems(root: pathlib.Path = ROOT) -> list[str]:
    """Figures the page shows that are missing from docs/ or differ from the record's (by SHA-256)."""
    problems = []
    exps = load(root / EXPERIMENTS_RECORD).get("experiments") or {}
    for f in README_FIGURES:
        want = {g.get("file"): g.get("sha256") for g in (exps.get(f.experiment) or {}).get("figures") or []}
        if f.source not in want:
            continue
        p = root / "docs" / f.name
        if not p.is_file():
            problems.append(f"docs/{f.name} is missing (the record has {f.experiment}/{f.source})")
        elif hashlib.sha256(p.read_bytes()).hexdigest() != want[f.source]:
            problems.append(f"docs/{f.name} is not {f.experiment}/{f.source} of the record (SHA-256 differs)")
    return problems


def main(argv: Sequence[str] | None = None, root: pathlib.Path = ROOT, echo: Callable[[str], Any] = print) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.readme", description=__doc__.strip().splitlines()[0])
    ap.add_argument("--check", action="store_true", help=f"change nothing; exit 1 with a diff if {PAGE} is out of date")
    args = ap.parse_args(argv)
    readme = root / PAGE
    old = readme.read_text(encoding="utf-8")
    new = generate(old, root)
    figs = figure_problems(root)
    if args.check:
        diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), PAGE, f"{PAGE} (generated)"))
        if diff:
            echo(diff)
            echo(f"{PAGE} differs from what the records give; run: python -m tools.readme  (records: {REGENERATE})")
        for p in figs:
            echo(f"figure: {p}; rerun: python -m experiments --record")
        return 1 if diff or figs else 0
    if new != old:
        readme.write_text(new, encoding="utf-8")
        echo(
            f"{PAGE}: generated blocks rewritten from "
            + ", ".join([EXPERIMENTS_RECORD, *BENCHMARK_RECORDS.values(), GRIDSEARCH_RECORD, BLOCKS_RECORD, COLDSTART_RECORD])
        )
    else:
        echo(f"{PAGE}: already up to date")
    for p in figs:
        echo(f"figure: {p}; rerun: python -m experiments --record")
    return 1 if figs else 0


if __name__ == "__main__":
    sys.exit(main())
