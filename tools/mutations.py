"""Mutation checks: each entry breaks one behaviour on purpose and names the tests that must catch it.

Not part of the suite (it runs the suite's tests on mutated copies of the tree): run it by hand when a
guard is added or changed, from the repository root::

    python -m tools.mutations                      # every mutation; a table, exit 1 if one goes uncaught
    python -m tools.mutations --only sklearn-pickle-drops-optimizer-state --before 692ccb7

Each mutation is applied to a fresh copy of the committed tree (``git archive HEAD``), never to the
working tree. A mutation is caught when the named tests fail on the copy. With ``--before COMMIT``
the same tests are also run with the test files of COMMIT (the tests as they were), to show what the
older suite let through.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Mutation:
    id: str
    item: str  # what the guard is for (issue 23's item)
    what: str  # the behaviour broken
    path: str  # the file mutated
    old: str  # text replaced (must occur exactly once)
    new: str
    tests: tuple[str, ...]  # node ids that must fail


MUTATIONS = [
    # 1. CI runs both tiers
    Mutation(
        "readme-test-command-drops-slow-tier",
        "1 both tiers in CI",
        "the README's test command (run verbatim by .ci/run) deselects the slow tier again",
        "README.md",
        "python -m pytest -q -n 2\n```",
        'python -m pytest -q -n 2 -m "not slow"\n```',
        ("tests/test_readme.py::test_first_lines_are_the_two_commands",),
    ),
    # 2. tests that could not fail
    Mutation(
        "loss-value-sums-over-batch",
        "2 tests that cannot fail",
        "losses.value sums over the batch instead of averaging (evaluate reports it)",
        "fnn/core/losses.py",
        "    return jnp.mean(e) if e.ndim else e\n",
        "    return jnp.sum(e) if e.ndim else e\n",
        ("tests/check/test_derivation.py::test_fit_fit_many_evaluate_and_make_step_with_user_parts",),
    ),
    Mutation(
        "gpu-check-vs-one-is-x-over-x",
        "2 tests that cannot fail",
        "gpu_check's 'vs one' divides each time by itself",
        "benchmarks/gpu_check.py",
        'r["vs_one"] = r["s"] / rows[0]["s"]',
        'r["vs_one"] = r["s"] / r["s"]',
        ("tests/benchmarks/test_gpu_check.py::test_gpu_check_smoke",),
    ),
    Mutation(
        "perceptron-verdict-lost",
        "2 tests that cannot fail",
        "the perceptron's XOR bound loses its verdict (ok=None)",
        "experiments/perceptron.py",
        "            ok=xor_best <= 0.75,\n",
        "            ok=None,\n",
        ("tests/experiments/test_exp_perceptron.py::test_perceptron_smoke",),
    ),
    Mutation(
        "sklearn-pickle-drops-optimizer-state",
        "2 tests that cannot fail",
        "a pickled estimator drops its optimizer state (partial_fit silently restarts Adam)",
        "fnn/sklearn.py",
        "    @property\n    def net_(self) -> MLP:\n",
        "    def __getstate__(self):\n"
        "        return {**self.__dict__, '_opt_state': None} if '_opt_state' in self.__dict__ else self.__dict__\n\n"
        "    @property\n"
        "    def net_(self) -> MLP:\n",
        ("tests/sklearn/test_sklearn.py::test_clone_pickle_and_joblib_round_trips",),
    ),
    Mutation(
        "history-holds-device-arrays",
        "2 tests that cannot fail",
        "fit's history holds device (jax) arrays instead of host numpy arrays",
        "fnn/train/_loop.py",
        "{k: v[:, :run] if many else v[:run] for k, v in rows.items()}",
        "{k: jnp.asarray(v[:, :run] if many else v[:run]) for k, v in rows.items()}",
        ("tests/test_reliability.py::test_history_is_json_ready",),
    ),
    # 3. values checked against a reference
    Mutation(
        "health-measured-before-the-epoch",
        "3 values against a reference",
        "dead/saturated fractions measured on the parameters the epoch started from",
        "fnn/train/_loop.py",
        "        h = _metrics.unit_health(cfg.net, state.params, data.probe)\n",
        "        h = _metrics.unit_health(cfg.net, c.state.params, data.probe)\n",
        ("tests/train/test_train.py::test_health_metrics_match_a_reference",),
    ),
    Mutation(
        "no-shuffle-runs-backwards",
        "3 values against a reference",
        "shuffle=False takes the minibatches in reverse row order",
        "fnn/train/_loop.py",
        "if cfg.shuffle else jnp.arange(cfg.n)",
        "if cfg.shuffle else jnp.arange(cfg.n)[::-1]",
        ("tests/train/test_train.py::test_without_shuffle_minibatches_are_consecutive_rows_in_order_every_epoch",),
    ),
    Mutation(
        "drop-last-drops-the-first-rows",
        "3 values against a reference",
        "drop_last drops the first n % batch_size rows instead of the last",
        "fnn/train/_loop.py",
        "perm[: n_full * cfg.batch_size]",
        "perm[cfg.n % cfg.batch_size if cfg.drop_last else 0 :][: n_full * cfg.batch_size]",
        ("tests/train/test_train.py::test_drop_last_without_shuffle_drops_the_last_rows",),
    ),
    Mutation(
        "binary-accuracy-at-one-half-counts-as-one",
        "3 values against a reference",
        "binary accuracy thresholds with >= 0.5",
        "fnn/analysis/metrics.py",
        "(out > 0.5) == (t > 0.5)",
        "(out >= 0.5) == (t > 0.5)",
        ("tests/analysis/test_metrics.py::test_binary_accuracy_thresholds_each_output_strictly_above_one_half",),
    ),
    Mutation(
        "decision-boundary-transposed",
        "3 values against a reference",
        "plot.decision_boundary shades the transposed class grid",
        "fnn/analysis/plot.py",
        "        pred.reshape(g0.shape),\n",
        "        pred.reshape(g0.shape).T,\n",
        ("tests/analysis/test_plot.py::test_decision_boundary_shades_the_class_the_network_predicts_at_each_grid_point",),
    ),
    Mutation(
        "fractions-rounded-to-float32",
        "3 values against a reference",
        "accuracy and unit fractions averaged in float32 in a float64 run (the bug the references found)",
        "fnn/analysis/metrics.py",
        "    return jnp.mean(b, dtype=jnp.promote_types(dtype, jnp.float32)).astype(dtype)\n",
        "    return jnp.mean(b).astype(dtype)\n",
        ("tests/analysis/test_metrics.py::test_fractions_keep_a_float64_runs_precision",),
    ),
    # 4. no timing or luck in assertions
    Mutation(
        "kill-lands-before-the-save",
        "4 deterministic kills",
        "the writer is killed before its second save starts (what a kill after a random sleep could do)",
        "tests/runs/test_checkpoint.py",
        "    checkpoint.save(path, net, params, version=v)\n",
        "    stop(point)\n    checkpoint.save(path, net, params, version=v)\n",
        ("tests/runs/test_checkpoint.py::test_killed_writer_never_leaves_a_broken_checkpoint",),
    ),
    Mutation(
        "save-not-atomic",
        "4 deterministic kills",
        "checkpoint.save writes the target in place before its temporary file",
        "fnn/runs/checkpoint.py",
        '        with os.fdopen(fd, "wb") as f:\n            np.savez(f, allow_pickle=False, **arrays)\n',
        "        np.savez(path, allow_pickle=False, **arrays)\n"
        '        with os.fdopen(fd, "wb") as f:\n            np.savez(f, allow_pickle=False, **arrays)\n',
        ("tests/runs/test_checkpoint.py::test_killed_writer_never_leaves_a_broken_checkpoint",),
    ),
    Mutation(
        "finite-differences-one-sided",
        "4 deterministic kills",
        "the complexity experiment's finite differences become one-sided (P + 1 evaluations' worth, not 2P)",
        "experiments/complexity.py",
        "            return (E(unravel(flat.at[i].add(H)), x, y) - E(unravel(flat.at[i].add(-H)), x, y)) / (2 * H)\n",
        "            return (E(unravel(flat.at[i].add(H)), x, y) - E(unravel(flat), x, y)) / H\n",
        ("tests/experiments/test_exp_complexity.py::test_complexity_smoke",),
    ),
    Mutation(
        "fuzz-time-limit-never-fires",
        "4 deterministic kills",
        "the API fuzzer's per-call time limit is never armed",
        "tools/fuzz_api.py",
        "    signal.setitimer(signal.ITIMER_REAL, seconds)\n",
        "    signal.setitimer(signal.ITIMER_REAL, 0)\n",
        ("tests/tools/test_fuzz.py::test_a_hang_is_a_bug",),
    ),
    # 5. hypothesis replays in CI
    Mutation(
        "ci-profile-not-derandomized",
        "5 hypothesis derandomized in CI",
        "the 'ci' hypothesis profile draws fresh examples",
        "conftest.py",
        'settings.register_profile("ci", settings.get_profile("default"), derandomize=True,',
        'settings.register_profile("ci", settings.get_profile("default"), derandomize=False,',
        ("tests/test_suite_policy.py::test_the_ci_profile_draws_the_same_examples_on_every_run",),
    ),
    # 6. a skip that hides a broken install
    Mutation(
        "sklearn-importorskip",
        "6 no skip hides a broken install",
        "test_sklearn.py skips itself when scikit-learn is missing",
        "tests/sklearn/test_sklearn.py",
        "import pytest\n",
        'import pytest\n\npytest.importorskip("sklearn")\n',
        ("tests/test_suite_policy.py::test_a_missing_scikit_learn_fails_the_estimator_tests_instead_of_skipping_them",),
    ),
]


def _name(test: str) -> str:
    """The test function a node id names (``path::name[params]`` -> ``name``)."""
    return test.split("::")[1].split("[", maxsplit=1)[0]


def _copy_tree(dest: pathlib.Path, commit: str = "HEAD") -> None:
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def _run_tests(tree: pathlib.Path, tests: tuple[str, ...]) -> tuple[bool, str, float]:
    """(all passed, the last lines of the output, seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "slow or not slow", "-x", *tests]
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith(("E ", "FAILED", "ERROR"))]
    return r.returncode == 0, " | ".join(failed[:2] or lines[-1:])[:300], time.perf_counter() - t


def check(m: Mutation, before: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"fnn-mut-{m.id}-") as d:
        tree = pathlib.Path(d)
        _copy_tree(tree)
        target = tree / m.path
        text = target.read_text()
        assert text.count(m.old) == 1, f"{m.id}: the text to mutate occurs {text.count(m.old)} times in {m.path}"
        target.write_text(text.replace(m.old, m.new))
        passed, detail, seconds = _run_tests(tree, m.tests)
        row = {"id": m.id, "item": m.item, "what": m.what, "caught": not passed, "detail": detail, "s": seconds}
        if before:
            olds = {}
            for test_file in {t.split("::")[0] for t in m.tests}:
                old = subprocess.run(["git", "show", f"{before}:{test_file}"], cwd=REPO, capture_output=True, text=True)
                olds[test_file] = old.stdout if old.returncode == 0 else None
            if m.path in olds:
                row["caught_before"] = "n/a, the mutation is in the test file"
            elif all(text is not None and f"def {_name(t)}(" in olds[t.split("::")[0]] for t in m.tests):
                for test_file, text in olds.items():
                    (tree / test_file).write_text(text)
                old_passed, old_detail, _ = _run_tests(tree, m.tests)
                row["caught_before"] = "caught" if not old_passed else "not caught"
                row["detail_before"] = old_detail
            else:
                row["caught_before"] = "no such test then"
        return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", help="run only this mutation id (repeatable)")
    ap.add_argument("--before", help="also run the tests as they were at this commit")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.id in args.only]
    rows = []
    for m in chosen:
        row = check(m, args.before)
        rows.append(row)
        verdict = "caught" if row["caught"] else "NOT CAUGHT"
        before = ""
        if "caught_before" in row:
            before = f" (tests at {args.before}: {row['caught_before']})"
        sys.stdout.write(f"{verdict}  {m.id} [{m.item}] {row['s']:.0f} s{before}\n    {row['detail']}\n")
        sys.stdout.flush()
    return 0 if all(r["caught"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
