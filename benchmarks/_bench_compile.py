"""Benchmark section 7, compilation and what it costs users: first calls, repeated calls, whole training
loops and single calls, each against plain JAX doing the same work, and each before and after issue 13.

Every figure comes from a fresh Python process (``python -c``), so "first call" means the first
call of a process, with JAX imported and nothing compiled, as a user's script meets it. Processes
alternate round after round (fnn, plain JAX, and fnn as it was before: :data:`BASELINE`, the
library's source at that commit taken with ``git archive`` when the repository has it), so a
slower stretch of a shared machine hits all of them; medians over the rounds.

- ``xor``: the README's call, ``fit(net, params, (x, y), loss="cross_entropy",
  optimizer=optax.sgd(0.5), epochs=E)``, with a freshly made MLP and optimizer: ``first`` (compile
  and run), ``idiomatic`` (nine more such calls, each with a fresh ``optax.sgd(0.5)`` and a
  re-created MLP), ``warm`` (held objects), one call each with another ``epochs``, a ``tol`` and
  the loss as its record, and ``programs`` (training loops compiled in all of that);
- ``first``: the first call of three problems against a plain-JAX ``jit`` of a ``lax.scan`` doing
  the same training (XOR 2-8-2 full batch; 64-128-128-10 on minibatches; ``fit_many`` of 16 XOR
  networks against a vmapped plain scan);
- ``steady``: ``fit`` on a 60,000 × 784 dataset (784-256-10 ReLU, SGD, batch 128, 2 shuffled
  epochs) against a plain-JAX scan doing the same (permute, gather, grad, optax update), warm,
  in one process, with what parts of the loop cost: the per-step gradient norms, the per-step
  divergence guard fnn had before (every parameter tested and selected each step), the shuffle;
- ``per_call``: one jitted ``manual_value_and_grad`` / ``autodiff_value_and_grad`` call against
  ``jax.jit(jax.value_and_grad)`` of the same loss written in plain JAX, at the step sizes of
  section 1, interleaved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from experiments import _common

# main before the first change for issue 13 ("compile once"): the "before" of every figure here
BASELINE = "c7b8474"
ROOT = Path(__file__).resolve().parent.parent

XOR_FNN = """
import json, time, jax, optax, fnn
E = {epochs}
x, y = fnn.datasets.xor()
def call(opt=None, net=None, **kw):
    net = net or fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
    kw = dict(loss="cross_entropy", epochs=E, progress=False) | kw
    t = time.perf_counter()
    p, _ = fnn.fit(net, net.init(jax.random.key(0)), (x, y), optimizer=opt or optax.sgd(0.5), **kw)
    jax.block_until_ready(p)
    return time.perf_counter() - t
out = dict(first=call())
out["idiomatic"] = sum(call() for _ in range(9))
opt, net = optax.sgd(0.5), fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
out["warm"] = min(call(opt, net) for _ in range(5))
out["epochs"] = call(epochs=max(1, E * 3 // 4))
out["tol"] = call(tol=0.01)
out["loss_record"] = call(loss=fnn.losses.CROSS_ENTROPY) if hasattr(fnn.losses, "CROSS_ENTROPY") else float("nan")
try:
    from fnn.train import _loop
    out["programs"] = _loop.compiled_runner.cache_info().misses
except (ImportError, AttributeError):  # before the loop had a cache
    out["programs"] = float("nan")
print(json.dumps(out))
"""

# first calls: the timer starts after the imports and the data, ends when the trained params are ready
FIRST_FNN = {
    "xor": """
import json, time, jax, optax, fnn
x, y = fnn.datasets.xor()
t = time.perf_counter()
net = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
p, _ = fnn.fit(net, net.init(jax.random.key(0)), (x, y), loss="cross_entropy", optimizer=optax.sgd(0.5), epochs={epochs},
               progress=False)
jax.block_until_ready(p)
print(json.dumps(dict(first=time.perf_counter() - t)))
""",
    "mlp": """
import json, time, jax, numpy as np, optax, fnn
rng = np.random.default_rng(0)
x, y = rng.standard_normal(({n}, 64), dtype=np.float32), rng.integers(0, 10, {n})
t = time.perf_counter()
net = fnn.MLP((64, 128, 128, 10), hidden="relu", output="softmax")
p, _ = fnn.fit(net, net.init(jax.random.key(0)), (x, y), loss="cross_entropy", optimizer=optax.sgd(0.05), batch_size=128,
               epochs={epochs}, key=jax.random.key(1), progress=False)
jax.block_until_ready(p)
print(json.dumps(dict(first=time.perf_counter() - t)))
""",
    "many": """
import json, time, jax, optax, fnn
x, y = fnn.datasets.xor()
t = time.perf_counter()
net = fnn.MLP((2, 8, 2), hidden="tanh", output="softmax")
ps, _ = fnn.fit_many(net, (x, y), loss="cross_entropy", optimizer=optax.sgd(0.5), epochs={epochs}, num_networks=16,
                     key=jax.random.key(0), progress=False)
jax.block_until_ready(ps)
print(json.dumps(dict(first=time.perf_counter() - t)))
""",
}

_PLAIN_INIT = """
import json, time, jax, jax.numpy as jnp, numpy as np, optax
def init(key, sizes):  # Glorot normal, as fnn draws for tanh and softmax
    keys = jax.random.split(key, len(sizes) - 1)
    return [{{"W": jax.random.normal(k, (o, i)) * jnp.sqrt(2.0 / (i + o)), "b": jnp.zeros(o)}}
            for k, i, o in zip(keys, sizes[:-1], sizes[1:])]
def loss(p, x, y, f):
    h = x
    for layer in p[:-1]:
        h = f(h @ layer["W"].T + layer["b"])
    z = h @ p[-1]["W"].T + p[-1]["b"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], 1))
"""

FIRST_PLAIN = {
    "xor": _PLAIN_INIT
    + """
x = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]); y = jnp.array([0, 1, 1, 0])
t = time.perf_counter()
@jax.jit
def train(key):
    p = init(key, (2, 8, 2))
    step = lambda p, _: (jax.tree_util.tree_map(lambda a, g: a - 0.5 * g, p, jax.grad(loss)(p, x, y, jnp.tanh)), None)
    return jax.lax.scan(step, p, None, length={epochs})[0]
jax.block_until_ready(train(jax.random.key(0)))
print(json.dumps(dict(first=time.perf_counter() - t)))
""",
    "mlp": _PLAIN_INIT
    + """
rng = np.random.default_rng(0)
x, y = rng.standard_normal(({n}, 64), dtype=np.float32), rng.integers(0, 10, {n})
t = time.perf_counter()
opt = optax.sgd(0.05)
@jax.jit
def train(key, x, y):
    p = init(key, (64, 128, 128, 10))
    def epoch(c, e):
        perm = jax.random.permutation(jax.random.fold_in(key, e), {n}).reshape(-1, 128)
        def step(c, idx):
            p, s = c
            u, s = opt.update(jax.grad(loss)(p, x[idx], y[idx], jax.nn.relu), s, p)
            return (optax.apply_updates(p, u), s), None
        return jax.lax.scan(step, c, perm)[0], None
    return jax.lax.scan(epoch, (p, opt.init(p)), jnp.arange({epochs}))[0][0]
jax.block_until_ready(train(jax.random.key(0), x, y))
print(json.dumps(dict(first=time.perf_counter() - t)))
""",
    "many": _PLAIN_INIT
    + """
x = jnp.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]); y = jnp.array([0, 1, 1, 0])
t = time.perf_counter()
@jax.jit
def train(key):
    p = jax.vmap(lambda k: init(k, (2, 8, 2)))(jax.random.split(key, 16))
    grad = jax.vmap(jax.grad(loss), (0, None, None, None))
    step = lambda p, _: (jax.tree_util.tree_map(lambda a, g: a - 0.5 * g, p, grad(p, x, y, jnp.tanh)), None)
    return jax.lax.scan(step, p, None, length={epochs})[0]
jax.block_until_ready(train(jax.random.key(0)))
print(json.dumps(dict(first=time.perf_counter() - t)))
""",
}

# steady state: one process, every variant warm, interleaved rounds
STEADY = """
import inspect, json, time, jax, jax.numpy as jnp, numpy as np, optax, fnn
N, D, H, K, B, E, ROUNDS = {n}, {d}, {h}, 10, 128, 2, {rounds}
rng = np.random.default_rng(0)
x = jnp.asarray(rng.standard_normal((N, D), dtype=np.float32)); y = jnp.asarray(rng.integers(0, K, N))
net = fnn.MLP((D, H, K), hidden="relu", output="softmax")
p0, opt, key = net.init(jax.random.key(0)), optax.sgd(0.01), jax.random.key(1)
def plain_loss(p, x, y):
    h = jax.nn.relu(x @ p[0]["W"].T + p[0]["b"]); z = h @ p[1]["W"].T + p[1]["b"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], 1))
norms = lambda g: jnp.stack([jnp.sqrt(jnp.sum(jnp.square(layer["W"]))) for layer in g])
finite = lambda t: jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(t)]))
def plain(variant):
    @jax.jit
    def train(p, x, y, key):
        def step(c, idx):
            p, s, acc = c
            E_, g = jax.value_and_grad(plain_loss)(p, x[idx], y[idx])
            u, s2 = opt.update(g, s, p)
            p2 = optax.apply_updates(p, u)
            if variant in ("norms", "old_guard"):
                acc = acc + norms(g).sum()
            if variant == "old_guard":  # fnn before: every new parameter tested, the state selected, each step
                ok = jnp.isfinite(E_) & jnp.all(jnp.isfinite(norms(g))) & finite(p2)
                p2, s2 = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), (p2, s2), (p, s))
            return (p2, s2, acc + E_), None
        c, nf = (p, opt.init(p), 0.0), N // B
        for e in range(E):
            perm = jax.random.permutation(jax.random.fold_in(key, e), N) if variant != "no_shuffle" else jnp.arange(N)
            c, _ = jax.lax.scan(step, c, perm[: nf * B].reshape(nf, B))
            if N % B:
                c, _ = step(c, perm[nf * B :])
        return c[0], c[2]
    return lambda: train(p0, x, y, key)
def fit(**kw):
    return lambda: fnn.fit(net, p0, (x, y), loss="cross_entropy", optimizer=opt, batch_size=B, epochs=E, key=key,
                           progress=False, **kw)[0]
fns = dict(plain=plain("plain"), fit_manual=fit(grad="manual"), fit_autodiff=fit(grad="autodiff"))
if "grad_norms" in inspect.signature(fnn.fit).parameters:
    fns["fit_grad_norms"] = fit(grad="manual", grad_norms=True)
fns.update(plain_norms=plain("norms"), plain_old_guard=plain("old_guard"), plain_no_shuffle=plain("no_shuffle"))
for f in fns.values():
    jax.block_until_ready(f())
runs = {{k: [] for k in fns}}
for _ in range(ROUNDS):
    for k, f in fns.items():
        t = time.perf_counter(); jax.block_until_ready(f()); runs[k].append(time.perf_counter() - t)
print(json.dumps(runs))
"""

PER_CALL = """
import json, jax, jax.numpy as jnp, numpy as np, fnn
from benchmarks._bench_common import STEP_CONFIGS, SMOKE_CONFIGS, interleaved, _problem
out = {{}}
for name, (sizes, batch) in ({configs}).items():
    net, p, x, y = _problem(sizes, batch, jax.random.key(0))
    def loss(p, x, y):
        h = x
        for layer in p[:-1]:
            h = jax.nn.relu(h @ layer["W"].T + layer["b"])
        z = h @ p[-1]["W"].T + p[-1]["b"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], 1))
    f = dict(plain=jax.jit(jax.value_and_grad(loss)), manual=jax.jit(fnn.manual_value_and_grad(net, "cross_entropy")),
             autodiff=jax.jit(fnn.autodiff_value_and_grad(net, "cross_entropy")))
    samples = {{}}
    med = interleaved({{k: (lambda g=g: g(p, x, y)) for k, g in f.items()}}, pairs={pairs}, samples_out=samples)
    ratio = lambda k: float(np.median(np.array(samples[k]) / np.array(samples["plain"])))
    out[name] = dict(us={{k: v * 1e6 for k, v in med.items()}}, manual_vs_plain=ratio("manual"),
                     autodiff_vs_plain=ratio("autodiff"))
print(json.dumps(out))
"""


def baseline_source(dest: Path) -> Path | None:
    """``fnn/`` as it was at :data:`BASELINE`, unpacked under ``dest`` (None when git or the commit is missing)."""
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE, "fnn"], check=True, capture_output=True, timeout=60)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar.stdout, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return dest if (dest / "fnn" / "__init__.py").exists() else None


def _process(code: str, lib: Path | None = None, timeout: int = 900) -> Any:
    """Run ``code`` in a fresh interpreter with fnn from ``lib`` (default: this checkout); its last stdout line, as JSON.

    The process starts in an empty directory, so ``PYTHONPATH`` alone decides which fnn it imports.
    """
    path = [str(lib)] if lib is not None else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*path, str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as cwd:
        p = subprocess.run(
            [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
        )
    if p.returncode:
        raise RuntimeError(f"compilation benchmark process failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def _ratio(runs: dict, name: str, base: str = "plain") -> float:
    """Median over the rounds of ``name``'s time / ``base``'s time in the same round."""
    return float(np.median(np.asarray(runs[name]) / np.asarray(runs[base])))


def run(args) -> dict[str, Any]:
    epochs = _common.size(args, 2000, 2000, 200)
    rounds = _common.size(args, 5, 3, 1)
    sizes = {  # first-call problems: (epochs, examples)
        "xor": (epochs, 4),
        "mlp": (_common.size(args, 20, 20, 2), _common.size(args, 1024, 1024, 256)),
        "many": (epochs, 4),
    }
    steady = {
        "n": _common.size(args, 60000, 60000, 1000),
        "d": _common.size(args, 784, 784, 64),
        "h": 256 // (4 if args.smoke else 1),
    }
    per_call_configs = "SMOKE_CONFIGS" if args.smoke else "STEP_CONFIGS"
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_source(Path(tmp))
        libs = {"after": None, **({"before": old} if old is not None else {})}
        xor: dict[str, list] = {k: [] for k in libs}
        first: dict[str, dict[str, list]] = {p: {k: [] for k in [*libs, "plain"]} for p in FIRST_FNN}
        for _ in range(rounds):  # alternate, so a slower stretch of a shared machine hits every variant
            for when, lib in libs.items():
                xor[when].append(_process(XOR_FNN.format(epochs=epochs), lib))
            for prob, (e, n) in sizes.items():
                for when, lib in libs.items():
                    first[prob][when].append(_process(FIRST_FNN[prob].format(epochs=e, n=n), lib)["first"])
                first[prob]["plain"].append(_process(FIRST_PLAIN[prob].format(epochs=e, n=n))["first"])
        steady_runs = {
            when: _process(STEADY.format(rounds=_common.size(args, 5, 3, 1), **steady), lib) for when, lib in libs.items()
        }
        pairs = _common.size(args, 15, 10, 2)
        per_call = {when: _process(PER_CALL.format(configs=per_call_configs, pairs=pairs), lib) for when, lib in libs.items()}

    r: dict[str, Any] = {"epochs": epochs, "rounds": rounds, "baseline": BASELINE if old is not None else None}
    r["xor"] = {when: {k: _median(runs, k) for k in runs[0]} for when, runs in xor.items()}
    r["xor_runs"] = xor
    for m in r["xor"].values():
        m["ten_calls"] = m["first"] + m["idiomatic"]
        m["one_compile_nine_warm"] = m["first"] + 9 * m["warm"]
        m["ten_vs_ideal"] = m["ten_calls"] / m["one_compile_nine_warm"]
    r["first"] = {
        prob: {
            "epochs": sizes[prob][0],
            "seconds": {k: float(np.median(v)) for k, v in runs.items()},
            **{f"{when}_vs_plain": _ratio(runs, when) for when in libs},
            "runs": runs,
        }
        for prob, runs in first.items()
    }
    r["steady"] = {"setup": steady | {"batch": 128, "epochs": 2, "classes": 10}}
    for when, runs in steady_runs.items():
        r["steady"][when] = {
            "seconds": {k: float(np.median(v)) for k, v in runs.items()},
            "vs_plain": {k: _ratio(runs, k) for k in runs if k != "plain"},
            "runs": runs,
        }
    r["per_call"] = per_call
    _print(r)
    return r


def _print(r: dict) -> None:
    after = r["xor"]["after"]
    whens = list(r["xor"])
    print(f"\n7. compilation: fresh processes, medians of {r['rounds']} rounds; before = fnn at {r['baseline']}")
    rows = [
        ("fnn.fit, first call of the process (compile + run)", "first", ".3f"),
        ("nine more calls, fresh optax.sgd(0.5) and MLP each", "idiomatic", ".3f"),
        ("one warm call (held objects)", "warm", ".4f"),
        (f"a call with epochs={max(1, r['epochs'] * 3 // 4)}", "epochs", ".4f"),
        ("a call with tol=0.01", "tol", ".4f"),
        ("a call with the loss as its record", "loss_record", ".4f"),
        ("10 idiomatic calls / (1 compile + 9 warm)", "ten_vs_ideal", ".2f"),
    ]
    print(
        _common.table(
            [(label, *(f"{r['xor'][w][k]:{fmt}}" for w in whens)) for label, k, fmt in rows],
            [f"XOR 2-8-2, {r['epochs']:,} epochs (seconds)", *whens],
        )
    )
    print(f"training loops compiled in that process: {after['programs']:.0f}")
    print(
        _common.table(
            [
                (prob, f"{f['seconds']['plain']:.3f}", *(f"{f['seconds'][w]:.3f} ({f[f'{w}_vs_plain']:.2f}x)" for w in whens))
                for prob, f in r["first"].items()
            ],
            ["first call vs plain JAX (s)", "plain", *whens],
        )
    )
    s = r["steady"]
    for w in whens:
        print(
            f"steady state {s['setup']['n']:,}x{s['setup']['d']} ({w}): "
            + ", ".join(f"{k} {v:.3f}x" for k, v in s[w]["vs_plain"].items())
            + f" (plain {s[w]['seconds']['plain']:.3f} s)"
        )
    for w in whens:
        print(
            f"per call / plain jax.value_and_grad ({w}): "
            + ", ".join(
                f"{c}: manual {v['manual_vs_plain']:.2f}, autodiff {v['autodiff_vs_plain']:.2f}"
                for c, v in r["per_call"][w].items()
            )
        )


def headlines(c: dict, row: Any) -> list[dict]:
    """The README rows of this section (``row`` makes a README headline)."""
    before = c["baseline"] is not None
    was = (lambda s: f"; before {s}") if before else (lambda s: "")
    a, b = c["xor"]["after"], c["xor"].get("before", {})
    out = [
        row(
            f"compilation, XOR 2-8-2, {c['epochs']:,} epochs, in fresh processes (median of {c['rounds']}): 10 fit calls as "
            "the README writes them (a fresh optax.sgd(0.5) and a re-created MLP each) / (1 compile + 9 warm calls)",
            a["ten_vs_ideal"],
            f"{a['ten_vs_ideal']:.2f} ({a['ten_calls']:.2f} s vs {a['one_compile_nine_warm']:.2f} s; training loops compiled: "
            f"{a['programs']:.0f}, also after calls with other epochs, a tol and the loss as a record: "
            f"{a['epochs'] * 1e3:.1f}, {a['tol'] * 1e3:.1f}, {a['loss_record'] * 1e3:.1f} ms"
            + (f"; before {b['ten_vs_ideal']:.2f}, {b['ten_calls']:.2f} s" if before else "")
            + ")",
            "≤ 1.5",
            a["ten_vs_ideal"] <= 1.5,
        )
    ]
    f = c["first"]
    worst = max(v["after_vs_plain"] for v in f.values())
    out.append(
        row(
            "first call of a fresh process (compile + run) / the first call of a plain-JAX jit of a lax.scan doing the same "
            f"training: fit on XOR 2-8-2 ({f['xor']['epochs']:,} full-batch steps), fit on 64-128-128-10 (minibatches of 128, "
            f"{f['mlp']['epochs']} epochs), fit_many of 16 XOR networks ({f['many']['epochs']:,} steps)",
            worst,
            ", ".join(
                f"{p} {v['after_vs_plain']:.2f} ({v['seconds']['after']:.2f} s vs {v['seconds']['plain']:.2f} s"
                + (f"; before {v['before_vs_plain']:.2f}" if before else "")
                + ")"
                for p, v in f.items()
            ),
            "≤ 1.5",
            worst <= 1.5,
        )
    )
    s = c["steady"]
    sa, setup = s["after"]["vs_plain"], s["setup"]
    steady = max(sa["fit_manual"], sa["fit_autodiff"])
    sb = s.get("before", {}).get("vs_plain", {})
    out.append(
        row(
            f"steady state: fit on {setup['n']:,} × {setup['d']} ({setup['d']}-{setup['h']}-10 ReLU, SGD, batch 128, 2 shuffled "
            "epochs, warm) / "
            "a plain-JAX lax.scan doing the same (permute, gather, grad, optax update), median of per-round ratios",
            steady,
            f"manual {sa['fit_manual']:.3f}, autodiff {sa['fit_autodiff']:.3f}"
            + was(f"{sb['fit_manual']:.3f} and {sb['fit_autodiff']:.3f}" if sb else "")
            + f"; with grad_norms=True {sa['fit_grad_norms']:.3f}",
            "≤ 1.05",
            steady <= 1.05,
        )
    )
    out.append(
        row(
            "what parts of a training loop cost, the same plain-JAX loop with one more part / without it: per-step "
            "gradient norms; the per-step divergence guard fnn had before (norms, every parameter tested, the state "
            "selected); no shuffle (sequential minibatches)",
            sa["plain_old_guard"],
            f"gradient norms {sa['plain_norms']:.3f}, old guard {sa['plain_old_guard']:.3f}, "
            f"no shuffle {sa['plain_no_shuffle']:.3f}",
            "",
            None,
        )
    )
    pa, pb = c["per_call"]["after"], c["per_call"].get("before", {})
    worst_call = max(v["manual_vs_plain"] for v in pa.values())
    out.append(
        row(
            "one call of jax.jit(fnn.manual_value_and_grad) / one call of jax.jit(jax.value_and_grad) of the same loss in "
            "plain JAX (ReLU, softmax + cross-entropy), interleaved, at the step sizes of the first row",
            worst_call,
            "; ".join(
                f"{name} {v['manual_vs_plain']:.2f} ({v['us']['manual']:.0f} µs vs {v['us']['plain']:.0f} µs"
                + (f"; before {pb[name]['manual_vs_plain']:.2f}" if name in pb else "")
                + ")"
                for name, v in pa.items()
            ),
            "≤ 1.2",
            worst_call <= 1.2,
        )
    )
    return out
