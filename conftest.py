"""Test-session setup that has to run before anything imports JAX or defines a hypothesis test
(this file is loaded first, for the tests and the docstring examples alike).

XLA. The suite is dominated by XLA compile time (each new shape or configuration compiles; on a
2-core CPU a trivial op takes ~70 ms to compile, a training loop ~4 s). Two XLA CPU flags halve
that: no LLVM optimisation passes and the older loop emitters. They change how fast the compiled
code runs, not what it computes; tests never assert timings. Set FNN_TEST_XLA_DEFAULTS=1 to test
with XLA's own defaults instead.

Hypothesis. Two profiles. ``ci`` is derandomized (each test draws the same examples on every run,
so a failure in CI is replayed by running the test again anywhere) and keeps no example database;
``explore`` (the default outside CI) draws fresh examples each run and saves failures in
``.hypothesis/`` so they replay locally. CI=true (set by the CI runner) selects ``ci``;
FNN_HYPOTHESIS_PROFILE=ci|explore chooses explicitly. The profile is loaded here because a
test module's ``settings(...)`` copies the defaults when it is created.

Cache. ``FNN_SKLEARN_CACHE=0``: the estimators leave JAX's persistent compilation cache off in the tests.

Memory maps. Every program XLA compiles on the CPU stays loaded (about six memory mappings each) while
JAX's caches hold it, and Linux allows a process 65530 mappings (``vm.max_map_count``). One xdist worker
compiles ten thousand programs and more in a full run; past the limit the next compilation segfaults
inside XLA ("LLVM compilation error: Cannot allocate memory"; CI saw it at 1831 of 1832 tests). Between
test modules, a worker whose mappings pass MAP_BUDGET clears JAX's caches (``jax.clear_caches``), which
unloads them; later tests recompile what they need.

Skips. A test that skips because something is missing hides a broken install. The skips the suite
expects are listed in EXPECTED_SKIPS, each with its reason; in CI (or with FNN_STRICT_SKIPS=1) any
other skip fails the run, and the terminal summary names it.
"""

import gc
import os
import re
import sys

FAST_COMPILE = "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0"

if os.environ.get("FNN_TEST_XLA_DEFAULTS") != "1" and FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

# Compilation cache. fnn.sklearn's estimators turn JAX's persistent compilation cache on at their first fit;
# in the test session that would write to the user's ~/.cache and, worse, change every later test's
# compilations (a cache hit where a test counts compilations). Off here; the tests of that behaviour opt in
# in subprocesses of their own.
os.environ["FNN_SKLEARN_CACHE"] = "0"

from hypothesis import settings  # noqa: E402  (after XLA_FLAGS, before any test module)

# Both start from hypothesis's defaults, not from whatever profile is loaded now (hypothesis loads its
# own "ci" profile when it sees CI set); the tests set their own deadlines and health checks.
settings.register_profile("ci", settings.get_profile("default"), derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", settings.get_profile("default"), derandomize=False, print_blob=True)
HYPOTHESIS_PROFILE = os.environ.get("FNN_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore")
settings.load_profile(HYPOTHESIS_PROFILE)

STRICT_SKIPS = bool(os.environ.get("FNN_STRICT_SKIPS") or os.environ.get("CI"))

# (test id pattern, skip reason pattern, why the skip is expected); re.search on each
EXPECTED_SKIPS = (
    (
        r"test_sklearn\.py::test_sklearn_estimator_checks\[.*check_array_api_input",
        r"SCIPY_ARRAY_API is not set",
        "scikit-learn runs its array-API checks only with a process-wide scipy switch the suite does not flip",
    ),
    (
        r"test_sklearn\.py::test_sklearn_estimator_checks\[MLPClassifier.*check_classifiers_multilabel_output_format_decision_function",
        r"does not have a decision_function method",
        "scikit-learn's own MLPClassifier has no decision_function either",
    ),
    (
        r"^fnn/data/datasets\.py::fnn\.data\.datasets\.(mnist|mnist1d)$",
        r"all tests skipped by \+SKIP option",
        "examples that read local MNIST files or generate all of MNIST-1D; tests/data/test_datasets.py runs both",
    ),
)


# PyTorch is the blocks' oracle (tests/core/test_blocks_torch.py). CI's main tier installs it (.ci/run:
# `pip install torch==2.13.0`, the CPU build on the machine's disk) and sets FNN_REQUIRE_TORCH=1, so there a
# missing torch fails the run; the lowest-versions tier and a plain `pip install -e ".[test]"` run without it.
if os.environ.get("FNN_REQUIRE_TORCH") != "1":
    EXPECTED_SKIPS += (
        (
            r"test_blocks_torch\.py",
            r"could not import 'torch'",
            "PyTorch is an optional oracle (the `oracle` extra); CI's main tier installs it and requires it",
        ),
    )


# The documentation site's browser check (tests/docs/test_site_browser.py) needs the built site, Chromium and the
# `playwright` package; it skips for want of one of them, with reasons that start "browser check of the site: ". Where
# CI builds the site it sets FNN_REQUIRE_SITE=1, and there the same want fails the test instead. Likewise the two tests
# of tools/site.py that run jupytext / nbclient (the docs extra): expected skips only where the site is not built.
if os.environ.get("FNN_REQUIRE_SITE") != "1":
    EXPECTED_SKIPS += (
        (
            r"tests/docs/test_site_browser\.py",
            r"browser check of the site: ",
            "the site check runs where the site is built (FNN_REQUIRE_SITE=1): `python -m tools.site build` first",
        ),
        (
            r"tests/tools/test_site\.py",
            r"the site's tools: ",
            "the notebook tools (jupytext, nbclient) are in the docs extra, which the site's build installs",
        ),
    )


MAP_BUDGET = 30_000  # of the 65530 mappings Linux allows a process; one module added at most ~3500 in a full run


def memory_maps() -> int | None:
    """How many memory mappings this process has (Linux's /proc/self/maps), or None where unknown."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def pytest_runtest_teardown(item, nextitem):
    # at the end of each test module (or doctest file), not between the tests of one, which may share programs
    if nextitem is not None and nextitem.path == item.path:
        return
    jax = sys.modules.get("jax")
    maps = memory_maps()
    if jax is not None and maps is not None and maps > MAP_BUDGET:
        jax.clear_caches()
        gc.collect()


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr)


def unexpected_skip(nodeid: str, reason: str) -> bool:
    """True when no entry of EXPECTED_SKIPS covers this skip."""
    return not any(re.search(i, nodeid) and re.search(r, reason) for i, r, _ in EXPECTED_SKIPS)


_unexpected: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    # in a pytest-xdist run this is called in the controller for every worker's report (and in each worker for its own)
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if unexpected_skip(report.nodeid, reason):
            _unexpected.append((report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    if STRICT_SKIPS and _unexpected and not hasattr(session.config, "workerinput") and exitstatus == 0:
        session.exitstatus = 1  # pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _unexpected and not hasattr(terminalreporter.config, "workerinput"):
        verdict = "fail this run" if STRICT_SKIPS else "would fail a CI run"
        terminalreporter.section(f"unexpected skips ({len(_unexpected)}): they {verdict}; see EXPECTED_SKIPS in conftest.py")
        for nodeid, reason in _unexpected:
            terminalreporter.line(f"{nodeid}: {reason}")
