"""The results page's measured numbers (docs/results.md) are exactly what the committed records give (tools/readme.py).

The first tests compare the page with the generator's output from docs/results_quick.json and
docs/benchmark_cpu.json; the rest exercise the generator and the recorder on tiny synthetic records.
"""

import difflib
import hashlib
import json
import pathlib

import pytest

from experiments import __main__ as runner
from tools import readme

ROOT = pathlib.Path(__file__).parents[2]


# ---------------------------------------------------------------------------------------------------------------------
# the committed results page against the committed records


def test_results_page_blocks_match_the_records():
    text = (ROOT / readme.PAGE).read_text(encoding="utf-8")
    generated = readme.generate(text, ROOT)
    diff = "".join(difflib.unified_diff(text.splitlines(True), generated.splitlines(True), readme.PAGE, "generated"))
    assert generated == text, f"{readme.PAGE} is out of date; run `python -m tools.readme`:\n{diff}"


def test_results_page_figures_are_the_records_figures():
    assert readme.figure_problems(ROOT) == []
    text = (ROOT / readme.PAGE).read_text(encoding="utf-8")
    shown = readme.figures_block(readme.load(ROOT / readme.EXPERIMENTS_RECORD))
    assert shown in text
    for f in readme.README_FIGURES:
        if f"```{{image}} {f.name}\n" in shown:
            assert (ROOT / "docs" / f.name).stat().st_size > 1000
    # every experiment has its section (the guide links to exp-<name>) and each section its guide page
    from experiments.__main__ import EXPERIMENTS

    for name in EXPERIMENTS:
        assert f"(exp-{name})=" in shown and f"{{doc}}`guide/{readme.GUIDE[name]}`" in shown
        assert (ROOT / "docs" / "guide" / f"{readme.GUIDE[name]}.md").is_file()


def test_committed_record_is_a_complete_quick_run_summary():
    rec = readme.load(ROOT / readme.EXPERIMENTS_RECORD)
    assert rec["schema"] == runner.SCHEMA and rec["mode"] == "quick"
    assert rec["command"].startswith("python -m experiments")
    assert {"machine", "versions", "date", "git"} <= set(rec)
    assert rec["experiments"] and set(rec["experiments"]) <= set(runner.EXPERIMENTS)
    for name, e in rec["experiments"].items():
        assert e["error"] is None, name
        assert e["mode"] == "quick" and e["headline"], name
        for h in e["headline"]:
            assert {"claim", "value", "text", "anchor", "ok", "basis", "readme"} <= set(h), (name, h)


# ---------------------------------------------------------------------------------------------------------------------
# the generator on synthetic records


def row(claim, ok=True, readme=False, basis="tested", text="1.00", anchor="ref"):
    return {"claim": claim, "value": 1.0, "text": text, "anchor": anchor, "ok": ok, "basis": basis, "readme": readme}


def record(**experiments):
    return {
        "schema": 1,
        "mode": "quick",
        "seed": 0,
        "date": "2026-01-02T03:04:05+00:00",
        "command": "python -m experiments",
        "machine": {"machine": "x86_64", "cpu_model": "Test CPU", "cpu_count": 8, "cpus_usable": 2, "platform": "cpu"},
        "versions": {"python": "3.11.0", "jax": "0.9.9"},
        "git": {"commit": "0123456789abcdef", "dirty": True, "changed": ["a.py", "b.py"]},
        "experiments": {
            name: {"mode": "quick", "seed": 0, "error": None, "headline": rows, "figures": []}
            for name, rows in experiments.items()
        },
    }


def table_rows(block):
    """The body rows of the block's table (its header line left out)."""
    return [line for line in block.splitlines() if line.startswith("| ")][1:]


def test_rows_flagged_for_the_readme_are_the_ones_shown():
    rec = record(perceptron=[row("shown A", readme=True), row("hidden B")], capacity=[row("hidden C", ok=False)])
    block = readme.experiments_block(rec, "r.json")
    rows = table_rows(block)
    assert rows == ["| {ref}`perceptron <exp-perceptron>` | shown A | 1.00 | ref | yes |"]
    assert "hidden" not in block and "No row of this record is flagged" not in block


def test_experiment_name_only_on_its_first_row():
    rec = record(perceptron=[row("a", readme=True), row("b", readme=True, ok=False)])
    assert table_rows(readme.experiments_block(rec)) == [
        "| {ref}`perceptron <exp-perceptron>` | a | 1.00 | ref | yes |",
        "|  | b | 1.00 | ref | **no** |",
    ]


def test_holds_marks_algebra_verdicts():
    assert readme.holds(row("x", basis="algebra")) == "yes (by algebra)"
    assert readme.holds(row("x", ok=False, basis="algebra")) == "**no** (by algebra)"
    assert readme.holds(row("x", ok=None, basis="algebra")) == ""
    assert readme.holds(row("x")) == "yes" and readme.holds(row("x", ok=False)) == "**no**"
    assert readme.holds({"ok": True}) == "yes"  # older records carry no basis
    rec = record(linear_collapse=[row("fold", readme=True, basis="algebra")])
    assert table_rows(readme.experiments_block(rec))[0].endswith("| yes (by algebra) |")


def test_falls_back_to_every_row_with_a_verdict_and_says_so():
    rec = record(perceptron=[row("v1"), row("no verdict", ok=None)], sweep=[row("v2", ok=False)])
    block = readme.experiments_block(rec, "r.json")
    assert [r.split(" | ")[1] for r in table_rows(block)] == ["v1", "v2"]
    assert "No row of this record is flagged for the README" in block


def test_provenance_line_names_the_record():
    rec = record(perceptron=[row("a", readme=True)])
    line = readme.experiments_block(rec, "docs/x.json").splitlines()[-1]
    for part in ("`docs/x.json`", "quick mode, seed 0", "2026-01-02 03:04 UTC", "x86_64 Test CPU", "2 CPU cores of 8"):
        assert part in line, part
    for part in ("Python 3.11.0", "JAX 0.9.9", "commit `0123456789`", "uncommitted changes to 2 files"):
        assert part in line, part
    rec["git"] = {"commit": None, "dirty": None, "changed": [], "error": "not a git repository"}
    assert "git commit not recorded" in readme.provenance(rec, "r.json", False)


def test_a_partial_record_shows_only_its_experiments_and_names_the_rest():
    rec = record(perceptron=[row("a", readme=True)], linear_collapse=[row("b", readme=True)])
    block = readme.experiments_block(rec)
    assert [r.split(" | ")[0] for r in table_rows(block) if r.split(" | ")[0] != "|"] == [
        "| {ref}`perceptron <exp-perceptron>`",
        "| {ref}`linear_collapse <exp-linear_collapse>`",
    ]
    assert "Not in this record: `nonlinear`, `representation`, `activations`" in block
    assert "`chain_rule`, `sklearn_compare`." in block
    full = record(**{n: [row(n, readme=True)] for n in runner.EXPERIMENTS})
    assert "Not in this record" not in readme.experiments_block(full)


def test_failed_experiment_and_pipes_are_shown_safely():
    rec = record(perceptron=[row("a | b", readme=True, text="x|y")])
    rec["experiments"]["sweep"] = {"mode": "quick", "error": "RuntimeError: boom", "headline": [], "figures": []}
    rows = table_rows(readme.experiments_block(rec))
    assert rows[0] == "| {ref}`perceptron <exp-perceptron>` | a \\| b | x\\|y | ref | yes |"
    assert rows[1].startswith("| {ref}`sweep <exp-sweep>` | **failed**: RuntimeError: boom |")


def test_benchmark_block_old_schema_and_missing_record():
    old = {"mode": "full", "platform": "cpu", "jax": "0.10.2", "python": "3.11.7", "peers": {"torch": {"version": "2.0"}}}
    old["headline"] = [
        {"claim": "steps/s", "text": "1,000", "anchor": "≥ 10", "ok": True, "value": 1000.0},
        {"claim": "info only", "text": "3", "anchor": "", "ok": None, "value": 3.0},
    ]
    block = readme.benchmark_block(old, "docs/b.json")
    head = ["| what | measured | target | met |", "|---|---|---|---|", "| steps/s | 1,000 | ≥ 10 | yes |"]
    assert block.splitlines()[:3] == head
    assert "info only" not in block
    last = block.splitlines()[-1]
    assert "full mode" in last and "date not recorded" in last and "machine not recorded (JAX platform cpu)" in last
    assert "JAX 0.10.2" in last and "PyTorch 2.0" in last and "git commit not recorded" in last
    old["headline"][1]["readme"] = True
    assert table_rows(readme.benchmark_block(old, "b.json")) == ["| info only | 3 |  |  |"]
    assert readme.benchmark_block(None, "docs/benchmark_gpu.json") == "No record is committed (`docs/benchmark_gpu.json`)."


def test_figures_block_shows_only_the_records_figures():
    rec = record(perceptron=[row("a")], capacity=[row("b")])
    rec["experiments"]["perceptron"]["figures"] = [{"file": "boundaries.png", "sha256": "0"}]
    block = readme.figures_block(rec)
    assert "```{image} perceptron.png\n" in block and "capacity.png" not in block and "nonlinear.png" not in block
    assert "(exp-perceptron)=" in block and "(exp-capacity)=" in block and "(exp-sweep)=" not in block
    assert "```{image}" not in readme.figures_block(record(sweep=[row("c")]))


# ---------------------------------------------------------------------------------------------------------------------
# replacing the marked blocks


def test_replace_blocks_rewrites_only_between_markers_and_is_idempotent():
    text = "intro 1.0\n<!-- generated:t -->\nstale\n<!-- /generated:t -->\nouter 2.0\n"
    new = readme.replace_blocks(text, {"t": "fresh"})
    assert new == "intro 1.0\n<!-- generated:t -->\nfresh\n<!-- /generated:t -->\nouter 2.0\n"
    assert readme.replace_blocks(new, {"t": "fresh"}) == new


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all\n",
        "<!-- generated:t -->\nonly a start\n",
        "<!-- generated:t -->\n<!-- /generated:t -->\n<!-- generated:t -->\n<!-- /generated:t -->\n",
    ],
)
def test_missing_or_repeated_markers_are_a_clear_error(text):
    with pytest.raises(ValueError, match=r"must contain the line '<!-- generated:t -->' once"):
        readme.replace_blocks(text, {"t": "x"})


def test_end_marker_before_start_is_an_error():
    with pytest.raises(ValueError, match="comes before"):
        readme.replace_blocks("<!-- /generated:t -->\n<!-- generated:t -->\n", {"t": "x"})


def fake_root(tmp_path, rec, readme_text):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "results_quick.json").write_text(json.dumps(rec), encoding="utf-8")
    (tmp_path / readme.PAGE).write_text(readme_text, encoding="utf-8")
    return tmp_path


MARKED = "".join(f"{a}\n{b}\n" for a, b in map(readme.markers, ("experiments", "figures", "benchmark-cpu", "benchmark-gpu")))


def test_main_check_prints_a_diff_and_fails_then_passes_after_regenerating(tmp_path):
    root = fake_root(tmp_path, record(perceptron=[row("a claim", readme=True)]), MARKED)
    said = []
    assert readme.main(["--check"], root=root, echo=said.append) == 1
    assert "+| {ref}`perceptron <exp-perceptron>` | a claim | 1.00 | ref | yes |" in said[0]
    assert (root / readme.PAGE).read_text() == MARKED
    assert readme.main([], root=root, echo=said.append) == 0
    assert "| {ref}`perceptron <exp-perceptron>` | a claim |" in (root / readme.PAGE).read_text()
    assert "No record is committed (`docs/benchmark_cpu.json`)." in (root / readme.PAGE).read_text()
    said.clear()
    assert readme.main(["--check"], root=root, echo=said.append) == 0 and said == []


def test_figure_problems_catch_a_missing_or_different_figure(tmp_path):
    rec = record(perceptron=[row("a")])
    png = b"\x89PNG fake"
    rec["experiments"]["perceptron"]["figures"] = [{"file": "boundaries.png", "sha256": hashlib.sha256(png).hexdigest()}]
    root = fake_root(tmp_path, rec, MARKED)
    assert readme.figure_problems(root) == ["docs/perceptron.png is missing (the record has perceptron/boundaries.png)"]
    (root / "docs" / "perceptron.png").write_bytes(png + b"!")
    assert "SHA-256 differs" in readme.figure_problems(root)[0]
    (root / "docs" / "perceptron.png").write_bytes(png)
    assert readme.figure_problems(root) == []


# ---------------------------------------------------------------------------------------------------------------------
# the runner's summary and record


def test_git_state_tolerates_no_repository(tmp_path):
    g = runner.git_state(tmp_path)
    assert g["commit"] is None and g["dirty"] is None and g["error"]
    here = runner.git_state(ROOT)
    assert here["commit"] is None or len(here["commit"]) == 40


def test_verdict_in_report_marks_algebra():
    assert runner.verdict(row("x", basis="algebra")) == "yes (algebra)"
    assert runner.verdict(row("x", ok=False)) == "**no**" and runner.verdict(row("x", ok=None)) == ""


def run_dir(tmp_path, png=b"\x89PNG figure", **changes):
    out = tmp_path / "results"
    (out / "perceptron").mkdir(parents=True)
    (out / "perceptron" / "boundaries.png").write_bytes(png)
    results = {"perceptron": {"mode": "quick", "seed": 0, "wall_s": 1.5, "headline": [row("a")], "figures": ["boundaries.png"]}}
    results["perceptron"].update(changes)
    s = runner.summary(results, out, {"command": "python -m experiments", "date": "d"}, 2.0)
    (out / "summary.json").write_text(json.dumps(s), encoding="utf-8")
    return out, s


def test_summary_keeps_settings_headlines_and_figure_checksums(tmp_path):
    _, s = run_dir(tmp_path, setting={"epochs": 3})
    e = s["experiments"]["perceptron"]
    assert s["mode"] == "quick" and s["seed"] == 0 and s["schema"] == runner.SCHEMA and s["command"] == "python -m experiments"
    assert e["settings"] == {"epochs": 3} and e["wall_s"] == 1.5 and e["error"] is None and e["headline"] == [row("a")]
    assert e["figures"] == [{"file": "boundaries.png", "sha256": hashlib.sha256(b"\x89PNG figure").hexdigest()}]


def test_record_copies_summary_and_shown_figures(tmp_path):
    out, _ = run_dir(tmp_path)
    docs = tmp_path / "docs"
    written = runner.record(out, docs)
    assert written == [docs / "results_quick.json", docs / "perceptron.png"]
    assert (docs / "results_quick.json").read_bytes() == (out / "summary.json").read_bytes()
    assert (docs / "perceptron.png").read_bytes() == b"\x89PNG figure"


def test_record_refuses_a_failed_run_or_an_overwritten_figure(tmp_path):
    out, _ = run_dir(tmp_path / "a", error="RuntimeError: boom")
    with pytest.raises(SystemExit, match="perceptron failed"):
        runner.record(out, tmp_path / "a" / "docs")
    out, _ = run_dir(tmp_path / "b")
    (out / "perceptron" / "boundaries.png").write_bytes(b"another run")
    with pytest.raises(SystemExit, match="is not the figure of the run"):
        runner.record(out, tmp_path / "b" / "docs")
    assert not (tmp_path / "b" / "docs" / "results_quick.json").exists()
    out, _ = run_dir(tmp_path / "c", mode="full")
    with pytest.raises(SystemExit, match="quick run"):
        runner.record(out, tmp_path / "c" / "docs")


def test_run_facts_name_machine_versions_command_and_commit():
    import datetime

    started = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    f = runner.run_facts(["--only", "perceptron"], started, prog="python -m benchmarks")
    assert f["command"] == "python -m benchmarks --only perceptron" and f["date"] == "2026-01-02T03:04:05+00:00"
    assert {"machine", "processor", "cpu_count", "device_kind", "platform"} <= set(f["machine"])
    assert f["machine"]["platform"] in {"cpu", "gpu", "cuda", "rocm", "tpu"} and f["machine"]["cpu_count"] >= 1
    assert set(runner.PACKAGES) | {"python"} <= set(f["versions"]) and f["versions"]["jax"] and f["versions"]["python"]
    assert set(f["git"]) >= {"commit", "dirty"}


# ---------------------------------------------------------------------------------------------------------------------
# the GridSearchCV block (benchmarks/records/gridsearch.json)


def gridsearch_record(**times):
    """A small fake record of ``python -m benchmarks._bench_gridsearch``: search_s by "lib/n_jobs"."""
    medians = {k: {"search_s": v} for k, v in times.items()}
    medians.get("none/1", {}).update(again_s=0.75)
    samples = {k: [{"search_s": v, "load_before": 0.2, "load_after": 1.1}] * 3 for k, v in times.items()}
    return {
        "mode": "full",
        "date": "2026-01-02T03:04:05+00:00",
        "machine": {"machine": "x86_64", "cpu_model": "Test CPU", "cpu_count": 2, "cpus_usable": 2, "platform": "cpu"},
        "versions": {"python": "3.11.0", "jax": "0.9.9", "scikit-learn": "1.9.0"},
        "git": {"commit": "0123456789abcdef", "dirty": False, "changed": []},
        "settings": {
            "hidden": [64],
            "max_iter": 20,
            "grid": {"alpha": [1, 2, 3], "learning_rate_init": [1, 2]},
            "cv": 3,
            "n_jobs": [1, 2],
            "cache_env": {"JAX_COMPILATION_CACHE_DIR": "<dir>", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"},
        },
        "samples": samples,
        "medians": medians,
        "verify": {"n_jobs": 2, "tree_hits": 5, "worker_hits": 4},
        "readme": {"load": [0.2, 1.1], "cache_written_cold": [2, 2], "cache_written_warm": 0},
    }


def test_gridsearch_block_renders_from_a_small_fake_record():
    rec = gridsearch_record(
        **{"sklearn/1": 1.7, "sklearn/2": 2.04, "none/1": 4.5, "none/2": 6.25, "warm/2": 3.0, "startup/2": 2.5}
    )
    block = readme.gridsearch_block(rec, "b/g.json")
    assert block.splitlines()[0].startswith("| `GridSearchCV` on digits: 6 settings × 3 folds + refit, ")
    assert block.splitlines()[0].endswith(" | n_jobs=1 | n_jobs=2 |")
    assert table_rows(block) == [
        "| scikit-learn's own `MLPClassifier` (reference) | 1.7 s | 2.0 s |",
        "| fnn.sklearn, no persistent compilation cache (the default before issue 28) | 4.5 s | 6.2 s |",
        "| fnn.sklearn, a second search in that process (its workers kept) | 0.8 s |  |",
        "| no search: only starting the workers, each importing JAX and fnn.sklearn |  | 2.5 s |",
        "| fnn.sklearn, shared cache, empty: the first run fills it |  |  |",
        "| fnn.sklearn, shared cache filled by an earlier run |  | 3.0 s |",
    ]
    for part in (
        "Medians of 3 fresh processes",
        "load average 0.20–1.10",
        "`JAX_COMPILATION_CACHE_DIR=<dir> JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0`",
        "wrote 2 files to it (JAX's entries, and in `fnn-executables/` the training programs fnn keeps whole), the next none",
        "5 programs were loaded from it, 4 of them by the workers",
    ):
        assert part in block, part
    last = block.splitlines()[-1]
    assert last.startswith("Generated from `b/g.json`: full mode; 2026-01-02 03:04 UTC; x86_64 Test CPU, 2 CPU cores")
    assert "scikit-learn 1.9.0" in last and "commit `0123456789`" in last


def test_gridsearch_block_is_generated_only_where_its_record_is(tmp_path):
    text = MARKED + "".join(s + "\n" for s in readme.markers("gridsearch"))
    root = fake_root(tmp_path, record(perceptron=[row("a claim", readme=True)]), text)
    assert "gridsearch" not in readme.blocks(root)
    (root / "benchmarks" / "records").mkdir(parents=True)
    rec = gridsearch_record(**{"none/1": 4.5, "none/2": 6.25})
    (root / readme.GRIDSEARCH_RECORD).write_text(json.dumps(rec), encoding="utf-8")
    assert readme.main([], root=root, echo=lambda _: None) == 0
    assert readme.gridsearch_block(rec) in (root / readme.PAGE).read_text()
    assert readme.main(["--check"], root=root, echo=lambda _: None) == 0


def test_committed_gridsearch_record_is_a_full_run_shown_on_the_results_page():
    rec = readme.load(ROOT / readme.GRIDSEARCH_RECORD)
    assert rec["mode"] == "full" and rec["settings"]["repeats"] >= 3
    assert all(len(v) == rec["settings"]["repeats"] for v in rec["samples"].values())
    assert readme.gridsearch_block(rec) in (ROOT / readme.PAGE).read_text(encoding="utf-8")
