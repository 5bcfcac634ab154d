"""fnn.compilation_cache and the estimators' cache: on where asked, never by ``import fnn``, a user's own wins.

JAX's cache settings are global to a process and read at its first compilation, so each behaviour is
checked in a fresh subprocess of its own (the test session keeps the cache off: conftest.py)."""

import os

import pytest
from _helpers import run_fresh as run

import fnn
from fnn.train import cache

PROBE = """
import json, jax, jax.numpy as jnp
from jax import monitoring
hits = []
monitoring.register_event_listener(lambda e, **k: hits.append(e) if e == "/jax/compilation_cache/cache_hits" else None)
import fnn
{setup}
out = {{"dir": jax.config.jax_compilation_cache_dir, "ret": ret}}
jax.jit(lambda v: jnp.tanh(v) * 3.0 + 1.0)(jnp.ones(7)).block_until_ready()
out["hits"] = len(hits)
print(json.dumps(out))
"""


@pytest.mark.slow  # fresh processes
def test_a_script_turns_it_on_and_the_next_process_loads_from_it(tmp_path):
    where = tmp_path / "c"
    first = run(PROBE.format(setup=f"ret = fnn.compilation_cache({str(where)!r})"), tmp_path)
    assert first == {"dir": str(where), "ret": str(where), "hits": 0}
    assert any(where.iterdir())  # the program was written, however quickly it compiled
    second = run(PROBE.format(setup=f"ret = fnn.compilation_cache({str(where)!r})"), tmp_path)
    assert second["hits"] >= 1  # ... and loaded, not compiled again


@pytest.mark.slow  # fresh processes
def test_import_never_turns_it_on_and_the_default_dir_is_fnns(tmp_path):
    plain = run(PROBE.format(setup="ret = None"), tmp_path)
    assert plain["dir"] is None and plain["hits"] == 0
    default = run(PROBE.format(setup="ret = fnn.compilation_cache()"), tmp_path)
    assert default["ret"] == default["dir"] == str(tmp_path / "xdg" / "fnn" / f"jax-{fnn_jax_version()}")
    env = run(PROBE.format(setup="ret = fnn.compilation_cache()"), tmp_path, FNN_CACHE_DIR=str(tmp_path / "e"))
    assert env["ret"] == str(tmp_path / "e")


def fnn_jax_version() -> str:
    import jax

    return jax.__version__


@pytest.mark.slow  # fresh processes
def test_the_users_own_cache_wins_and_disabled_stays_off(tmp_path):
    mine = run(PROBE.format(setup="ret = fnn.compilation_cache()"), tmp_path, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "mine"))
    assert mine["ret"] == mine["dir"] == str(tmp_path / "mine")
    off = run(
        PROBE.format(setup="jax.config.update('jax_enable_compilation_cache', False); ret = fnn.compilation_cache()"), tmp_path
    )
    assert off["ret"] is None and off["dir"] is None


ESTIMATOR = """
import json, jax
from fnn.sklearn import MLPClassifier
MLPClassifier((4,), max_iter=5, random_state=0).fit([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], [0, 1, 1, 0])
print(json.dumps({"dir": jax.config.jax_compilation_cache_dir}))
"""


@pytest.mark.slow  # fresh processes
def test_the_estimators_turn_it_on_at_their_first_fit_unless_told_not_to(tmp_path, recwarn):
    on = run(ESTIMATOR, tmp_path, FNN_CACHE_DIR=str(tmp_path / "est"))
    assert on["dir"] == str(tmp_path / "est") and any((tmp_path / "est").iterdir())
    for value in ("0", "off"):
        assert run(ESTIMATOR, tmp_path, FNN_CACHE_DIR=str(tmp_path / "no"), FNN_SKLEARN_CACHE=value)["dir"] is None
    assert not (tmp_path / "no").exists()


@pytest.mark.slow  # a fresh process: JAX's cache settings are not toggled in the test session
def test_an_unwritable_directory_warns_and_leaves_it_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    setup = f"""
import warnings
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    ret = fnn.compilation_cache({str(blocker / "sub")!r})
assert any("no persistent compilation cache" in str(x.message) for x in w), [str(x.message) for x in w]
"""
    out = run(PROBE.format(setup=setup), tmp_path)
    assert out["ret"] is None and out["dir"] is None


def test_bad_path_is_refused_by_name():
    with pytest.raises(TypeError, match="`path` must be a directory path"):
        fnn.compilation_cache(5)
    with pytest.raises(ValueError, match="`path` must be a non-empty path"):
        fnn.compilation_cache("")


def test_the_session_keeps_the_estimators_off():
    assert os.environ.get(cache.ENV_SKLEARN) == "0" and cache.for_estimators() is None
