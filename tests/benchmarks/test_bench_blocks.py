"""benchmarks/_bench_blocks.py: the quick mode end to end (tiny sizes), the structure of its record and the README
block it renders; its timings are never compared. The fast tier runs the JAX sections (``--no-torch``, ~10 s); the
slow tier runs the quick mode whole, PyTorch timed alone in its own process (importing it takes seconds)."""

import functools
import importlib.util
import json

import pytest

from benchmarks import _bench_blocks as bb
from tools import readme

TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    out = tmp_path_factory.mktemp("blocks") / "blocks.json"
    said: list[str] = []
    rec = bb.main(["--quick", "--no-torch", "--out", str(out)], echo=said.append)
    assert json.loads(out.read_text()) == json.loads(json.dumps(rec))  # what was written is what was returned
    rec["_said"] = said
    return rec


def test_record_names_the_run(record):
    assert record["schema"] == bb.SCHEMA and record["mode"] == "quick" and record["tool"] == bb.PROG
    assert {"command", "date", "machine", "versions", "git", "settings", "targets", "wall_s"} <= set(record)
    assert record["machine"]["platform"] == "cpu" and "load_average_start" in record["machine"]
    assert "commit" in record["git"] and record["versions"]["jax"]
    assert record["settings"] | bb.QUICK == record["settings"] and record["settings"]["dtype"] == "float32"


def test_every_block_is_timed_both_ways_and_both_compute_the_same(record):
    s = record["settings"]
    passes = s["rounds"] * s["passes"]
    assert [b["block"] for b in record["blocks"]] == list(bb.block_cases(s["width"]))
    diag = record["diagnostic_options"] is not None  # None where the jaxlib lacks the option (jaxlib 0.6, CI's lowest tier)
    for b in record["blocks"]:
        assert set(b["samples"]) == {"manual", "autodiff"} | ({"manual, dots only", "autodiff, dots only"} if diag else set())
        assert ("dots_only_ratio" in b) == diag
        assert all(len(v) == passes and min(v) > 0 for v in b["samples"].values()), b["block"]
        assert b["ratio"]["pairs"] == passes and b["ratio"]["iqr"][0] <= b["ratio"]["median"] <= b["ratio"]["iqr"][1]
        assert b["met"] == (b["ratio"]["median"] <= record["targets"]["block"])
        assert b["max_rel_diff"] < 1e-5, b["block"]  # the hand-derived backward pass is jax.vjp's, to rounding
    bn = record["batchnorm_backward"]
    assert set(bn["samples"]) == {"closed", "staged"} and bn["max_rel_diff"] < 1e-5
    assert len(bn["load"]) == s["rounds"]


def test_network_steps_agree_with_plain_jax_and_are_all_timed(record):
    net, s = record["network"], record["settings"]
    assert net["sizes"] == s["sizes"] and net["scan"] == s["scan"] and net["target"] == record["targets"]["step"]
    assert [r["batch"] for r in net["rows"]] == s["net_batches"]
    names = {f"{v}{w}" for v in ("fnn manual", "fnn autodiff", "plain JAX") for w in ("", ", scan")}
    if record["diagnostic_options"]:  # the scans of fnn manual and plain JAX, also compiled with the diagnostic options
        names |= {"fnn manual, scan, dots only", "plain JAX, scan, dots only"}
    for r in net["rows"]:
        assert set(r["samples"]) == set(r["us"]) == names
        assert r["us_per_step"]["plain JAX, scan"] == pytest.approx(r["us"]["plain JAX, scan"] / s["scan"])
        assert set(r["vs_plain"]) == {n for n in names if n.startswith("fnn")}
        assert r["met"] == all(q["median"] <= net["target"] for n, q in r["vs_plain"].items() if "dots only" not in n)
        # one step of fnn (either backward pass) and of the hand-written plain-JAX step: the same numbers
        assert set(r["agreement"]) == {"manual", "autodiff"}
        for a in r["agreement"].values():
            assert set(a) == {"loss", "weights", "running_stats"} and max(a.values()) < 1e-4, a


@pytest.mark.slow  # the quick mode with PyTorch: a fresh process importing torch, then the JAX sections again
@pytest.mark.skipif(not TORCH, reason="PyTorch is not installed (optional peer)")
def test_quick_mode_with_pytorch_alone_in_its_process(tmp_path):
    rec = bb.main(["--quick", "--out", str(tmp_path / "blocks.json")], echo=lambda _: None)
    torch = rec["network"]["torch"]
    assert torch["threads"] == bb.THREADS and rec["versions"]["torch"] == torch["version"]
    for r in rec["network"]["rows"]:
        assert len(r["torch_samples"]) == rec["settings"]["rounds"] * rec["settings"]["torch_samples"]
        assert r["torch_us"] > 0
    block = readme.blocks_bench_block(rec)
    assert f"| PyTorch {torch['version']} eager, alone in its own process, {bb.THREADS} threads, per step" in block


def test_without_pytorch_the_record_says_so(record):
    assert record["network"]["torch"] is None and "torch" not in record["versions"]
    assert all("torch_us" not in r and r["torch_samples"] == [] for r in record["network"]["rows"])


def test_readme_block_renders_from_the_record(record):
    block = readme.blocks_bench_block(record, "b/blocks.json")
    w = record["settings"]["width"]
    assert f"| `Dense({w})` |" in block and "| every fnn / plain JAX ratio ≤ 1.1 (diagnostic rows aside) |" in block
    assert "PyTorch" not in block  # run without it: no row, no word
    assert block.splitlines()[-1].startswith("Generated from `b/blocks.json`: quick mode;")
    assert any(line.startswith("network batch") for line in record["_said"])


def test_passes_alternate_their_order():
    calls: list[str] = []
    fns = {n: functools.partial(calls.append, n) for n in "abc"}
    out: dict = {}
    assert bb.alternate(fns, {"a": 1, "b": 1, "c": 2}, 2, 0, out) == 2
    assert calls == ["a", "b", "c", "c", "c", "c", "b", "a"] and [len(v) for v in out.values()] == [2, 2, 2]
    assert list(out) == ["a", "b", "c"]


def test_bad_rounds_is_refused():
    with pytest.raises(SystemExit):
        bb.main(["--quick", "--rounds", "0"])
