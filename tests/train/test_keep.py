"""fnn.train._keep: the estimators' training programs kept on disk whole, loaded by a later process
without tracing; the same executable, so the same numbers, and anything it cannot key exactly is left
to jax.jit."""

import collections
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import run_fresh as run

from fnn.core.activations import Activation
from fnn.core.losses import Loss
from fnn.core.mlp import MLP
from fnn.train import _keep, engine


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """A directory for kept programs in this process (JAX's own cache stays as the session has it),
    and fresh counters and memory."""
    monkeypatch.setattr(_keep, "directory", lambda: tmp_path / "kept")
    monkeypatch.setattr(_keep, "_loaded", collections.OrderedDict())
    monkeypatch.setattr(_keep, "stats", collections.Counter())
    return tmp_path / "kept"


def _double(c, x):
    return {"a": c["a"] * 2.0 + x, "n": c["n"] + 1}


def test_a_program_is_written_read_back_and_gives_the_same_numbers(kept):
    f = jax.jit(_double)
    args = ({"a": np.arange(3.0, dtype=np.float32), "n": np.int32(0)}, np.ones(3, np.float32))
    want = f(*args)
    first = _keep.call(f, ["double"], args)
    assert _keep.stats == {"miss": 1} and len(list(kept.glob("*.bin"))) == 1
    _keep._loaded.clear()  # as a fresh process: read from the disk
    second = _keep.call(f, ["double"], args)
    assert _keep.stats == {"miss": 1, "hit": 1}
    third = _keep.call(f, ["double"], args)  # held in memory now
    assert _keep.stats == {"miss": 1, "hit": 1, "held": 1}
    for got in (first, second, third):
        assert jax.tree.structure(got) == jax.tree.structure(want)
        np.testing.assert_array_equal(got["a"], want["a"])
        assert int(got["n"]) == 1


def test_a_program_read_from_disk_is_counted_and_logged_where_jax_logs_compiles(kept, monkeypatch, caplog):
    events = []
    jax.monitoring.register_event_listener(lambda e, **k: events.append(e) if e == _keep.HIT_EVENT else None)
    f = jax.jit(_double)
    args = ({"a": np.ones(2, np.float32), "n": np.int32(0)}, np.ones(2, np.float32))
    _keep.call(f, ["double"], args)  # compiled: no hit
    _keep._loaded.clear()
    _keep.call(f, ["double"], args)  # read back, JAX's log off: counted, not logged
    assert events == [_keep.HIT_EVENT] and _keep.HIT_LOG not in caplog.text
    monkeypatch.setattr(_keep._cache, "_config", lambda name: True)  # as with JAX_LOG_COMPILES=1
    _keep._loaded.clear()
    with caplog.at_level("WARNING", logger=_keep.__name__):
        _keep.call(f, ["double"], args)
    assert len(events) == 2 and f"{_keep.HIT_LOG}: {kept}" in caplog.text


def test_other_shapes_dtypes_or_labels_are_other_programs(kept):
    f = jax.jit(_double)
    c = {"a": np.zeros(3, np.float32), "n": np.int32(0)}
    _keep.call(f, ["double"], (c, np.ones(3, np.float32)))
    _keep.call(f, ["double"], ({"a": np.zeros(4, np.float32), "n": np.int32(0)}, np.ones(4, np.float32)))
    _keep.call(f, ["double", "other"], (c, np.ones(3, np.float32)))
    _keep.call(f, ["double"], (c, 1.0))  # a Python number: weakly typed, another program
    assert _keep.stats == {"miss": 4} and len(list(kept.glob("*.bin"))) == 4


def test_a_file_that_cannot_be_read_back_is_compiled_again_and_replaced(kept):
    f = jax.jit(_double)
    args = ({"a": np.ones(2, np.float32), "n": np.int32(3)}, np.ones(2, np.float32))
    _keep.call(f, ["double"], args)
    (path,) = kept.glob("*.bin")
    path.write_bytes(b"cut short")
    _keep._loaded.clear()
    got = _keep.call(f, ["double"], args)
    assert _keep.stats == {"miss": 2} and path.stat().st_size > 100
    np.testing.assert_array_equal(got["a"], [3.0, 3.0])
    assert not list(kept.glob("*.tmp"))  # written whole: no partial files left


def test_nothing_is_kept_without_a_directory_a_label_or_plain_arguments(kept, monkeypatch):
    f = jax.jit(_double)
    args = ({"a": np.ones(2, np.float32), "n": np.int32(0)}, np.ones(2, np.float32))
    _keep.call(f, None, args)  # a plan that cannot be written down
    monkeypatch.setattr(_keep, "directory", lambda: None)  # JAX's persistent cache off
    _keep.call(f, ["double"], args)
    assert _keep.stats == {"skip": 2} and not kept.exists()


def test_nothing_is_kept_where_jax_s_cache_is_off():
    assert jax.config.jax_compilation_cache_dir in (None, "")  # the test session keeps it off (conftest.py)
    assert _keep.directory() is None  # the fresh processes below turn it on and find the kept programs


def _plan(**kw):
    net = MLP((2, 3, 1), "tanh", "identity")
    defaults = {"loss": "mse", "optimizer": optax.sgd(0.1), "grad": "autodiff", "rows": 4, "batch_size": 4}
    return engine.make_plan(net, **{**defaults, **kw})


def test_a_plan_is_labelled_only_when_it_can_be_written_down_exactly():
    label = _plan()
    assert _keep.plan_label(label) == _keep.plan_label(_plan())  # fresh optax.sgd(0.1): the same program
    assert _keep.plan_label(_plan()) is not None
    assert _keep.plan_label(_plan(optimizer=optax.sgd(0.2))) != _keep.plan_label(_plan())
    assert _keep.plan_label(_plan(rows=8)) != _keep.plan_label(_plan())
    json.dumps(_keep.plan_label(_plan()))  # plain JSON values

    class Opaque:
        def __call__(self, g):
            return g

    scale = Opaque()
    opaque = optax.GradientTransformation(lambda p: optax.EmptyState(), lambda g, s, p=None: (scale(g), s))
    assert _keep.plan_label(_plan(optimizer=opaque)) is None
    mine = Loss("mse", lambda u, y: jnp.sum((u - y) ** 2, axis=-1), lambda u, y: 2.0 * (u - y))
    assert _keep.plan_label(_plan()._replace(loss=mine)) is None  # a loss that is not fnn's own, under its name
    custom = Activation("tanh", lambda z: jnp.tanh(z) * 2.0, lambda z, h=None: 2.0 * (1 - jnp.tanh(z) ** 2))
    assert _keep.plan_label(_plan()._replace(net=MLP((2, 3, 1), custom, "identity"))) is None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_estimator_s_second_fit_loads_the_program_and_trains_the_same(kept):
    from sklearn.datasets import load_breast_cancer

    from fnn.sklearn import MLPClassifier

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    first = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y)
    assert _keep.stats["miss"] >= 1 and _keep.stats["hit"] == 0
    _keep._loaded.clear()
    second = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(X, y)
    assert _keep.stats["hit"] >= 1
    for a, b in zip(first.coefs_ + first.intercepts_, second.coefs_ + second.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert first.loss_curve_ == second.loss_curve_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_lbfgs_fit_is_kept_too_and_trains_the_same(kept):
    from sklearn.datasets import load_iris

    from fnn.sklearn import MLPClassifier

    X, y = load_iris(return_X_y=True)
    fit = lambda: MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=30, random_state=0).fit(X, y)
    first = fit()
    assert _keep.stats == {"miss": 1}
    _keep._loaded.clear()
    second = fit()
    assert _keep.stats == {"miss": 1, "hit": 1}
    for a, b in zip(first.coefs_ + first.intercepts_, second.coefs_ + second.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert (first.loss_, first.n_iter_) == (second.loss_, second.n_iter_)


KEPT = """
import json
import numpy as np
from sklearn.datasets import load_diabetes
from fnn.sklearn import MLPRegressor
from fnn.train import _keep
import jax, os
if os.environ.get("NOKEEP"):  # JAX's persistent cache alone, as before fnn kept executables
    _keep.directory = lambda: None
traced = []
jax.monitoring.register_event_duration_secs_listener(
    lambda e, d, **k: traced.append(e) if e == "/jax/core/compile/jaxpr_trace_duration" else None)
X, y = load_diabetes(return_X_y=True)
import warnings; warnings.simplefilter("ignore")
est = MLPRegressor(hidden_layer_sizes=(16,), max_iter=30, random_state=0).fit(X, y)
print(json.dumps({"stats": dict(_keep.stats), "traced": len(traced),
                  "coefs": [c.tolist() for c in est.coefs_], "loss": est.loss_curve_}))
"""


@pytest.mark.slow  # fresh processes
def test_a_fresh_process_loads_what_the_first_kept_and_traces_nothing_for_it(tmp_path):
    first = run(KEPT, tmp_path, FNN_CACHE_DIR=str(tmp_path / "c"))
    assert first["stats"] == {"miss": 1} and first["traced"] >= 1
    assert any((tmp_path / "c" / _keep.SUBDIR).glob("*.bin"))
    second = run(KEPT, tmp_path, FNN_CACHE_DIR=str(tmp_path / "c"))
    assert second["stats"] == {"hit": 1}
    assert second["traced"] < first["traced"]  # the training loop was not traced again
    off = run(KEPT, tmp_path, FNN_CACHE_DIR=str(tmp_path / "c"), FNN_SKLEARN_CACHE="0")
    assert off["stats"] == {"skip": 1}
    for other in (second, off):  # the same numbers, loaded, compiled here or through jax.jit
        assert other["coefs"] == first["coefs"] and other["loss"] == first["loss"]


@pytest.mark.slow  # fresh processes
def test_a_program_in_jax_s_cache_is_compiled_afresh_before_it_is_kept(tmp_path):
    # An executable JAX loaded from its own cache serializes into a blob that fails when run (jaxlib 0.10,
    # CPU: "Function add_divide_fusion not found"): the kept one must come from a fresh compilation.
    where = str(tmp_path / "c")
    jax_only = run(KEPT, tmp_path, FNN_CACHE_DIR=where, NOKEEP="1")  # fills JAX's cache, keeps nothing
    assert jax_only["stats"] == {"skip": 1} and not (tmp_path / "c" / _keep.SUBDIR).exists()
    keeping = run(KEPT, tmp_path, FNN_CACHE_DIR=where)  # JAX's cache has the program: compiled again, kept
    assert keeping["stats"] == {"miss": 1}
    loaded = run(KEPT, tmp_path, FNN_CACHE_DIR=where)  # runs the kept program
    assert loaded["stats"] == {"hit": 1}
    for other in (keeping, loaded):
        assert other["coefs"] == jax_only["coefs"] and other["loss"] == jax_only["loss"]
