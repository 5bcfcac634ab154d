"""Smoke test: the benchmark script runs end to end (tiny shapes) and records every section.

Timings are never compared here (they are noisy on a shared machine; the benchmark prints them):
this checks structure, the FLOP count against an independent count from the sizes, the compiled
programs' matrix products, how each peer ran, and that the README rows are self-contained."""

import itertools
import json

import pytest

from benchmarks import _bench_peers, benchmark
from fnn.core.mlp import SMALL


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmark")
    benchmark.main(["--smoke", "--out", str(out)])
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow  # the benchmark end to end in smoke mode: the `slow` tier
def test_sections(record):
    r = record
    assert {"steps", "roofline", "loop", "many", "peers", "memory", "headline", "xla_flags"} <= set(r)
    assert [s["config"] for s in r["steps"]] == list(benchmark.SMOKE_CONFIGS)
    assert all(s["manual_us"] > 0 and s["autodiff_us"] > 0 and s["ratio"] > 0 for s in r["steps"])
    assert all(s["ratio_iqr"][0] <= s["ratio"] <= s["ratio_iqr"][1] for s in r["steps"])
    assert r["loop"]["scan"] > 0 and r["loop"]["python"] > 0 and r["loop"]["fit"] > 0
    assert {m["networks"] for m in r["many"]["rows"]} == {1, 4}
    assert all(o["fnn_s"] > 0 and o["xla_default_s"] > 0 and o["speedup"] > 0 for o in r["many"]["options"].values())
    assert [s["case"] for s in r["many"]["shuffle"]] == ["256 networks x 300 examples", "1 x 60,000 examples"]


def _independent_flops(sizes, batch):
    """2·B·Σ n_in·n_out for the forward products, the same for ∂E/∂W, and δW for every layer but the first."""
    layers = list(itertools.pairwise(sizes))
    forward = 2 * batch * sum(i * o for i, o in layers)
    delta = 2 * batch * sum(i * o for i, o in layers[1:])
    return forward + forward + delta


@pytest.mark.slow  # the benchmark end to end in smoke mode: the `slow` tier
def test_flop_count_is_the_products_the_step_computes(record):
    for s in record["steps"]:
        sizes, batch = benchmark.SMOKE_CONFIGS[s["config"]]
        assert s["sizes"] == list(sizes) and s["batch"] == batch
        assert s["flops"]["total"] == _independent_flops(sizes, batch)
        assert s["flops"]["products"] == 3 * (len(sizes) - 1) - 1
        assert s["manual_gflops"] == pytest.approx(s["flops"]["total"] / (s["manual_us"] * 1e-6) / 1e9)
    roof = record["roofline"]
    assert roof["flops"]["total"] == _independent_flops(roof["sizes"], roof["batch"])
    # the bare-products reference computes exactly those products: one dot each ...
    assert roof["products_dots"] == roof["flops"]["products"] == 3 * (len(roof["sizes"]) - 1) - 1
    # ... so the GFLOP/s ratio and the time ratio are the same number
    assert roof["gflops"] / roof["products_gflops"] == pytest.approx(roof["speed_vs_products"], rel=1e-9)
    assert roof["speed_vs_products"] == pytest.approx(roof["products_s"] / roof["step_s"], rel=1e-9)


@pytest.mark.slow  # the benchmark end to end in smoke mode: the `slow` tier
def test_hlo_counts_of_manual_and_autodiff(record):
    for s in record["steps"]:
        hlo = s["hlo"]
        for g in ("manual", "autodiff"):
            assert {"dots", "fusions", "instructions"} <= set(hlo[g])
            assert hlo[g]["instructions"] > hlo[g]["dots"] + hlo[g]["fusions"] > 0
        sizes, batch = benchmark.SMOKE_CONFIGS[s["config"]]
        # one dot per product the FLOP count counts (3 per layer but no ∂E/∂x), except that fnn
        # computes products of at most fnn.core.mlp.SMALL multiply-adds elementwise (XOR has no dot)
        big = [batch * i * o > SMALL for i, o in itertools.pairwise(sizes)]
        expected = 2 * sum(big) + sum(big[1:])
        assert expected == (0 if s["config"].startswith("xor") else s["flops"]["products"])
        assert hlo["manual"]["dots"] == hlo["autodiff"]["dots"] == expected
        assert hlo["same_opcode_counts"] == (hlo["opcode_differences"] == {})


def test_hlo_counts_parser():
    text = """HloModule m, entry_computation_layout={(f32[2,2]{1,0})->f32[2,2]{1,0}}

%fused_computation (p: f32[2,2]) -> f32[2,2] {
  %p = f32[2,2]{1,0} parameter(0)
  ROOT %t = f32[2,2]{1,0} tanh(%p)
}

ENTRY %main (a: f32[2,2]) -> (f32[2,2], s32[]) {
  %a = f32[2,2]{1,0} parameter(0)
  %d = f32[2,2]{1,0} dot(%a, %a), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %f = f32[2,2]{1,0} fusion(%d), kind=kLoop, calls=%fused_computation
  %c = s32[] constant(0)
  ROOT %r = (f32[2,2]{1,0}, s32[]) tuple(%f, %c)
}
"""
    c = benchmark.hlo_counts(text)
    assert (c["dots"], c["fusions"], c["instructions"]) == (1, 1, 7)
    assert c["opcodes"]["tuple"] == 1 and c["opcodes"]["parameter"] == 2


@pytest.mark.slow  # the benchmark end to end in smoke mode: the `slow` tier
def test_peers_ran_alone_in_their_own_process(record):
    peers = record["peers"]
    if _bench_peers.installed("torch"):
        t = peers["torch"]
        assert t["process"].startswith("PyTorch alone in its own process") and f"{t['threads']} threads" in t["process"]
        assert all(s["torch_us"] > 0 and s["fnn_call_us"] > 0 for s in t["steps"]) and t["xor"]["speedup"] > 0
    else:
        assert peers["torch"].startswith("skipped: torch is not installed")
    s = peers["sklearn"]  # scikit-learn is in the test extras
    assert s["process"].startswith("scikit-learn alone in its own process")
    assert s["fnn_epochs"] == s["sklearn_epochs"] == s["max_iter"]  # 5 epochs stop no rule early
    assert 0 <= s["fnn_acc"] <= 1 and 0 <= s["sklearn_acc"] <= 1 and s["warm_fraction"] > 0


def test_worker_never_imports_jax(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype(np.float32), np.arange(40) % 3
    np.savez(tmp_path / "d.npz", x_tr=x, y_tr=y, x_te=x, y_te=y)
    out = _bench_peers.call_worker("sklearn", {"npz": str(tmp_path / "d.npz"), "repeats": 2, "max_iter": 3, "seed": 0})
    assert out["jax_imported"] is False and len(out["fit_s"]) == 2 and out["epochs_all"] == [3, 3]
    with pytest.raises(RuntimeError, match="worker `sklearn` failed"):
        _bench_peers.call_worker("sklearn", {"npz": str(tmp_path / "missing.npz"), "repeats": 1, "max_iter": 1, "seed": 0})


@pytest.mark.slow  # the benchmark end to end in smoke mode: the `slow` tier
def test_readme_rows_are_self_contained(record):
    rows = [h for h in record["headline"] if h["readme"]]
    claims = " | ".join(h["claim"] for h in rows)
    for needle in ("manual / autodiff", "compiled programs", "bare matrix products", "XOR 2-8-2", "digits"):
        assert needle in claims
    for h in rows:
        assert h["basis"] in ("tested", "algebra") and h["text"] and h["claim"]
        assert h["ok"] is None or h["anchor"]  # a verdict always names its target
    hlo = next(h for h in rows if "compiled programs" in h["claim"])
    assert all(f"{s['hlo']['manual']['dots']} dots" in hlo["text"] for s in record["steps"])
    digits = next(h for h in rows if "digits" in h["claim"])
    assert "alone in its own process" in digits["claim"] and "test accuracy" in digits["text"]
    sk = record["peers"]["sklearn"]
    assert digits["ok"] == (digits["value"] <= 0.2 and sk["sklearn_acc"] - sk["fnn_acc"] <= 0.01)


@pytest.mark.slow  # the benchmark end to end in smoke mode: the `slow` tier
def test_compilation_section_counts_one_training_loop(record):
    from benchmarks import _bench_common

    c = record["compilation"]
    whens = ["after"] + (["before"] if c["baseline"] else [])
    assert list(c["xor"]) == whens
    a = c["xor"]["after"]
    # every fnn call of the fresh process, with fresh optimizers, MLPs, other epochs, a tol and a loss record
    assert a["programs"] == 1
    assert a["ten_calls"] >= a["first"] > 0
    assert a["ten_vs_ideal"] == pytest.approx(a["ten_calls"] / a["one_compile_nine_warm"])
    for prob in ("xor", "mlp", "many"):
        f = c["first"][prob]
        assert set(f["runs"]) == {*whens, "plain"} and all(f[f"{w}_vs_plain"] > 0 for w in whens)
    for w in whens:
        parts = set(c["steady"][w]["vs_plain"])
        assert {"fit_manual", "fit_autodiff", "plain_norms", "plain_old_guard", "plain_no_shuffle"} <= parts
        assert list(c["per_call"][w]) == list(_bench_common.SMOKE_CONFIGS)
    assert "fit_grad_norms" in c["steady"]["after"]["vs_plain"]
    starts = ("compilation", "first call of a fresh process", "steady state", "what parts", "one call of")
    rows = [h for h in record["headline"] if h["claim"].startswith(starts)]
    assert [next(s for s in starts if h["claim"].startswith(s)) for h in rows] == list(starts)
    assert all(h["readme"] for h in rows) and [h["anchor"] for h in rows] == ["≤ 1.5", "≤ 1.5", "≤ 1.05", "", "≤ 1.2"]
    # without the baseline (a checkout without git history) the rows still build, without "before"
    import copy

    from benchmarks import _bench_compile

    alone = copy.deepcopy(c)
    alone["baseline"] = None
    for section in ("xor", "steady", "per_call"):
        alone[section].pop("before", None)
    for f in alone["first"].values():
        f.pop("before_vs_plain", None)
    texts = [h["text"] for h in _bench_compile.headlines(alone, _bench_peers.readme_row)]
    assert len(texts) == 5 and not any("before" in t for t in texts)
