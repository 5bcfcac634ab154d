"""The suite's own rules (set in the repository's root conftest.py): hypothesis replays in CI, and a
skip that nobody expected fails a CI run instead of hiding a broken install."""

import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

REPO = pathlib.Path(__file__).resolve().parents[1]


def _root_conftest():
    """The root conftest.py as a module of its own name (pytest has loaded it as a plugin already)."""
    spec = importlib.util.spec_from_file_location("fnn_root_conftest", REPO / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- hypothesis: derandomized in CI, exploring elsewhere ----------------------------------------------


def _draws(profile: str) -> list[int]:
    drawn: list[int] = []

    @settings(settings.get_profile(profile), max_examples=30, database=None)
    @given(st.integers(0, 2**62))
    def draw(i):
        drawn.append(i)

    draw()
    return drawn


def test_the_ci_profile_draws_the_same_examples_on_every_run():
    first, again = _draws("ci"), _draws("ci")
    assert first == again and len(set(first)) > 10
    assert _draws("explore") != _draws("explore")  # the local profile explores: fresh examples each run


def test_the_profile_in_force_is_the_one_the_environment_asks_for():
    want = os.environ.get("FNN_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore")
    assert want == _root_conftest().HYPOTHESIS_PROFILE
    # loaded before the test modules built their settings: theirs inherit it
    assert settings.default.derandomize is (want == "ci")
    assert (settings.default.database is None) is (want == "ci")


# ---- skips: only the expected ones ---------------------------------------------------------------------


def test_expected_skips_are_recognised_and_nothing_else():
    c = _root_conftest()
    array_api = (
        "tests/sklearn/test_sklearn.py::test_sklearn_estimator_checks[MLPRegressor(max_iter=100,random_state=0)-"
        "check_array_api_input(array_namespace=numpy,expect_only_array_outputs=False)]"
    )
    assert not c.unexpected_skip(array_api, "Skipped: SCIPY_ARRAY_API is not set: not checking array_api input")
    assert not c.unexpected_skip("fnn/data/datasets.py::fnn.data.datasets.mnist1d", "all tests skipped by +SKIP option")
    # the same reason elsewhere, another reason there, a missing dependency: all unexpected
    assert c.unexpected_skip("fnn/train/_fit.py::fnn.train._fit.fit", "all tests skipped by +SKIP option")
    assert c.unexpected_skip(array_api, "could not import 'sklearn': No module named 'sklearn'")
    assert c.unexpected_skip("tests/sklearn/test_sklearn.py", "could not import 'sklearn': No module named 'sklearn'")


SKIPPING = """
import pytest

def test_runs():
    assert True

def test_needs_a_missing_package():
    pytest.importorskip("fnn_no_such_package")
"""


def _run_pytest(tmp_path, extra_env, args=()):
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(SKIPPING))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "FNN_STRICT_SKIPS")}
    env.update(extra_env, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", *args, "test_probe.py"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)


def test_an_unexpected_skip_fails_a_ci_run_and_is_named(tmp_path):
    ci = _run_pytest(tmp_path, {"CI": "true"})
    assert ci.returncode == 1, ci.stdout[-2000:]
    assert "1 passed, 1 skipped" in ci.stdout and "unexpected skips (1): they fail this run" in ci.stdout
    assert "test_probe.py::test_needs_a_missing_package: Skipped: could not import 'fnn_no_such_package'" in ci.stdout
    local = _run_pytest(tmp_path, {})  # outside CI the run passes and still says what CI would do
    assert local.returncode == 0 and "they would fail a CI run" in local.stdout


def test_a_missing_scikit_learn_fails_the_estimator_tests_instead_of_skipping_them():
    code = (
        "import sys, pytest; sys.modules['sklearn'] = None; "
        "raise SystemExit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests/sklearn/test_sklearn.py']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 2, r.stdout[-2000:]  # an error while collecting, not a skip
    assert "ModuleNotFoundError: import of sklearn halted" in r.stdout and "skipped" not in r.stdout


# ---- memory maps: a worker that compiled many programs unloads them between modules ---------------------


class _Item:
    def __init__(self, path):
        self.path = pathlib.Path(path)


def test_a_worker_past_the_map_budget_clears_jax_caches_between_modules_only(monkeypatch):
    import jax
    import jax.numpy as jnp

    c = _root_conftest()
    here = c.memory_maps()
    assert here is None or here > 0  # Linux: counted; elsewhere: unknown, and nothing is cleared

    f = jax.jit(lambda x: x * 3.0)
    f(jnp.ones(3))
    assert f._cache_size() == 1
    monkeypatch.setattr(c, "memory_maps", lambda: c.MAP_BUDGET + 1)
    c.pytest_runtest_teardown(_Item("tests/a.py"), _Item("tests/a.py"))  # inside a module: kept
    assert f._cache_size() == 1
    monkeypatch.setattr(c, "memory_maps", lambda: c.MAP_BUDGET)
    c.pytest_runtest_teardown(_Item("tests/a.py"), _Item("tests/b.py"))  # at the budget: kept
    assert f._cache_size() == 1
    monkeypatch.setattr(c, "memory_maps", lambda: c.MAP_BUDGET + 1)
    c.pytest_runtest_teardown(_Item("tests/a.py"), _Item("tests/b.py"))  # past it, between modules: cleared
    assert f._cache_size() == 0
    f(jnp.ones(3))
    c.pytest_runtest_teardown(_Item("tests/a.py"), None)  # the worker's last test too
    assert f._cache_size() == 0
    np_result = f(jnp.ones(3))  # and the program compiles again when a later test needs it
    assert float(np_result[0]) == 3.0
