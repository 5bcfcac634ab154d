"""Long runs survive: fit and fit_many write checkpoints as they go and resume from them, continue in
memory across calls, and hand out snapshots; continued any way, a run ends bitwise where one
uninterrupted call ends (on the CPU). Mismatched resumes, damaged and foreign files, bad arguments.

The subprocess tests (SIGKILL at random points and during saves, SIGINT) are in the slow tier.
"""

import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn import checkpoint
from fnn.train import _loop

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO_PATH = pathlib.Path(REPO)
NET = fnn.MLP((2, 5, 1), hidden="tanh")
OPT = optax.adam(0.02)  # one object: every fit below shares the compiled loop of its plan
MANY_OPT = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
RATES = jnp.array([0.05, 0.3, 8.0])  # the third network diverges


def _data(n, seed, dtype=jnp.float32):
    x = jax.random.normal(jax.random.key(seed), (n, 2), dtype)
    return x, jnp.sin(2 * x[:, :1]) * jnp.cos(x[:, 1:])


X, Y = _data(40, 0)
VAL = _data(16, 1)


def _kw(dtype=jnp.float32, **kw):
    """fit's arguments (float32 or float64 data), with early stopping watching a validation set."""
    data, val = (X, Y), VAL
    if dtype != jnp.float32:
        data, val = _data(40, 0, dtype), _data(16, 1, dtype)
    base = {"loss": "mse", "optimizer": OPT, "batch_size": 8, "key": jax.random.key(2), "progress": False}
    return {"data": data, "validation": val, "early_stopping": fnn.EarlyStopping(1000)} | base | kw


def _fit(epochs, params="init", dtype=jnp.float32, **kw):
    kw = _kw(dtype, **kw)
    params = NET.init(jax.random.key(0), dtype) if isinstance(params, str) else params
    return fnn.fit(NET, params, kw.pop("data"), epochs=epochs, **kw)


def _fit_many(epochs, **kw):
    kw = {"loss": "mse", "optimizer": MANY_OPT, "batch_size": 8, "key": jax.random.key(4), "progress": False} | kw
    return fnn.fit_many(NET, (X, Y), epochs=epochs, hyperparams={"learning_rate": RATES}, **kw)


def assert_bitwise(a, b):
    """Every leaf of two pytrees: the same dtype, shape and bits."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and len(la) == len(lb)
    for u, v in zip(jax.device_get(la), jax.device_get(lb)):
        assert u.dtype == v.dtype and u.shape == v.shape
        assert u.tobytes() == v.tobytes()


def assert_same_history(h, g):
    assert set(h) - {"state"} == set(g) - {"state"}
    for k in set(h) - {"state"}:
        if isinstance(h[k], np.ndarray):
            assert h[k].dtype == g[k].dtype and h[k].shape == g[k].shape, k
            assert h[k].tobytes() == g[k].tobytes(), k  # bits: NaN rows included
        else:
            assert h[k] == g[k], k


@contextlib.contextmanager
def no_new_training_loop(caplog):
    """Nothing in the block compiles the training loop again (JAX's compile log, not only fnn's cache)."""
    misses = _loop.compiled_runner.cache_info().misses
    with caplog.at_level(logging.WARNING), jax.log_compiles():
        yield
    assert _loop.compiled_runner.cache_info().misses == misses
    assert not [r.getMessage() for r in caplog.records if "Compiling jit(run)" in r.getMessage()]


def _copy_one(src, name, dst):
    dst.mkdir()
    shutil.copy(src / name, dst / name)
    return dst


def _files(d):
    return sorted(p.name for p in d.iterdir())


# ---- resumed runs are the uninterrupted run, bit for bit ------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_checkpoints_change_nothing_and_every_resume_is_bitwise(tmp_path, dtype, request, caplog):
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = getattr(jnp, dtype)  # the scalar type, as a user writes it
    want_p, want_h = _fit(30, dtype=dt)
    p, h = _fit(30, dtype=dt, checkpoint=fnn.Checkpointing(tmp_path / "run", every=7, keep=10))
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)
    assert _files(tmp_path / "run") == [f"state-{e:09d}.npz" for e in (7, 14, 21, 28, 30)]
    for e in (7, 21):  # resumed in this process from each of two checkpoints
        d = _copy_one(tmp_path / "run", f"state-{e:09d}.npz", tmp_path / f"from{e}")
        with no_new_training_loop(caplog):
            p, h = _fit(30, dtype=dt, checkpoint=fnn.Checkpointing(d, resume=True))
        assert_bitwise(p, want_p)
        assert_same_history(h, want_h)
        assert h["epochs_run"] == 30 and h["steps"] == 150
    net, params, meta = fnn.load(tmp_path / "run" / "state-000000030.npz")  # fnn.load reads the final state's params
    assert net == NET and meta == {"epoch": 30, "epochs": 30, "complete": True}
    assert_bitwise(params, want_p)


def test_early_stopping_survives_a_resume(tmp_path):
    want_p, want_h = _fit(200, early_stopping=fnn.EarlyStopping(4))
    assert want_h["stop_reason"] == "early_stopping" and 8 < want_h["epochs_run"] < 200
    stop = want_h["epochs_run"]
    _fit(200, early_stopping=fnn.EarlyStopping(4), checkpoint=fnn.Checkpointing(tmp_path / "run", every=3, keep=100))
    before_best = (want_h["best_epoch"] // 3) * 3  # a checkpoint before the best epoch, another between best and stop
    between = ((want_h["best_epoch"] + 1) // 3 + 1) * 3
    starts = sorted({before_best, between} & set(range(3, stop, 3)))
    assert starts
    for e in starts:
        d = _copy_one(tmp_path / "run", f"state-{e:09d}.npz", tmp_path / f"from{e}")
        p, h = _fit(200, early_stopping=fnn.EarlyStopping(4), checkpoint=fnn.Checkpointing(d, resume=True))
        assert_bitwise(p, want_p)  # the best parameters, kept in the checkpoint
        assert_same_history(h, want_h)


def test_fit_many_with_a_diverging_network_resumes_bitwise(tmp_path):
    want_p, want_h = _fit_many(40)
    assert want_h["diverged"].tolist() == [False, False, True]
    diverged_at = int(want_h["epochs_run"][2])
    _fit_many(40, checkpoint=fnn.Checkpointing(tmp_path / "run", every=2, keep=100))
    for e in sorted({2, (diverged_at // 2 + 1) * 2, 38}):  # before the divergence, after it, near the end
        d = _copy_one(tmp_path / "run", f"state-{e:09d}.npz", tmp_path / f"from{e}")
        p, h = _fit_many(40, checkpoint=fnn.Checkpointing(d, resume=True))
        assert_bitwise(p, want_p)
        assert_same_history(h, want_h)


def test_a_finished_run_resumes_to_its_result_and_a_longer_one_goes_on(tmp_path, monkeypatch):
    want_p, want_h = _fit(24)
    longer_p, longer_h = _fit(36)
    _fit(24, checkpoint=fnn.Checkpointing(tmp_path, every=5))
    calls = []
    runner = _loop.compiled_runner
    monkeypatch.setattr(_loop, "compiled_runner", lambda *a: lambda *b: calls.append(1) or runner(*a)(*b))
    p, h = _fit(24, checkpoint=fnn.Checkpointing(tmp_path, resume=True))  # nothing left to run
    assert calls == []
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)
    p, h = _fit(36, checkpoint=fnn.Checkpointing(tmp_path, resume=True))  # more epochs: the run goes on from 24
    assert_bitwise(p, longer_p)
    assert_same_history(h, longer_h)
    with pytest.raises(ValueError, match=r"`epochs` is 20, but .* has run 36 epochs"):
        _fit(20, checkpoint=fnn.Checkpointing(tmp_path, resume=True))


def test_time_based_checkpoints_and_keep(tmp_path):
    want_p, want_h = _fit(40)
    p, h = _fit(40, checkpoint=fnn.Checkpointing(tmp_path, every_s=1e-6, keep=2))  # a checkpoint after every chunk
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)
    files = _files(tmp_path)
    assert len(files) == 2 and files[-1] == "state-000000040.npz"


# ---- continuing in memory -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ten_calls_of_ten_epochs_are_one_call_of_a_hundred(dtype, request, caplog):
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = getattr(jnp, dtype)  # the scalar type, as a user writes it
    want_p, want_h = _fit(100, dtype=dt)
    params, state, hists = NET.init(jax.random.key(0), dt), None, []
    with no_new_training_loop(caplog):  # the same compiled loop throughout
        for _ in range(10):
            params, h = _fit(10, params=params, dtype=dt, state=state, return_state=True)
            state = h["state"]
            hists.append(h)
    assert_bitwise(params, want_p)
    for k in ("loss", "val_loss", "val_accuracy"):
        assert np.concatenate([h[k] for h in hists]).tobytes() == want_h[k].tobytes(), k
    assert [h["epochs_run"] for h in hists] == [10] * 10 and sum(h["steps"] for h in hists) == want_h["steps"]
    assert hists[-1]["best_epoch"] == want_h["best_epoch"]  # counted from the run's start
    assert int(state.epoch) == 100 and int(state.train_state.step) == 500 and state.stop_reason == "epochs"


def test_the_first_call_returns_its_state_on_request_only():
    _, h = _fit(3)
    assert "state" not in h  # the history stays JSON-ready by default
    _, h = _fit(3, return_state=True)
    assert isinstance(h["state"], fnn.FitState) and int(h["state"].epoch) == 3
    host = jax.device_get(h["state"])  # a pytree
    assert isinstance(host, fnn.FitState) and isinstance(host.epoch, np.ndarray)


def test_fit_many_continues_in_memory_bitwise():
    want_p, want_h = _fit_many(30)
    state, hists = None, []
    for _ in range(3):
        p, h = _fit_many(10, state=state, return_state=True)
        state = h["state"]
        hists.append(h)
    assert_bitwise(p, want_p)
    assert np.concatenate([h["loss"] for h in hists], axis=1).tobytes() == want_h["loss"].tobytes()
    assert (sum(h["epochs_run"] for h in hists) == want_h["epochs_run"]).all()
    assert (hists[-1]["diverged"] == want_h["diverged"]).all() and state.stop_reason[2] == "diverged"
    assert hists[-1]["epochs_run"].tolist()[2] == 0  # the diverged network stays stopped


def test_state_with_an_override_changes_the_learning_rate_on_purpose():
    _, h = _fit(5, return_state=True)
    params = h["state"].params
    with pytest.raises(ValueError, match=r"(?s)differs in optimizer.*override=\('optimizer',\)"):
        _fit(5, params=None, state=h["state"], optimizer=optax.adam(0.5))
    p_new, _ = _fit(5, params=None, state=h["state"], optimizer=optax.adam(0.5), override="optimizer")
    p_same, _ = _fit(5, params=params, state=h["state"])
    assert not np.array_equal(p_new[0]["W"], p_same[0]["W"])
    with pytest.raises(ValueError, match="another structure"):
        _fit(5, params=None, state=h["state"], optimizer=optax.sgd(0.1), override="optimizer")
    with pytest.raises(ValueError, match="`params` are not those of `state`"):
        _fit(5, params=NET.init(jax.random.key(9)), state=h["state"])


# ---- callbacks ----------------------------------------------------------------------------------
def test_callback_cadence_and_the_loop_leaves_the_device_only_then(monkeypatch):
    calls, seen = [], []
    runner = _loop.compiled_runner
    monkeypatch.setattr(_loop, "compiled_runner", lambda *a: lambda *b: calls.append(1) or runner(*a)(*b))
    want_p, want_h = _fit(30)
    assert len(calls) == 1  # one chunk without a callback
    calls.clear()
    p, h = _fit(
        30, callback=fnn.Callback(lambda e, params, hist: seen.append((e, len(hist["loss"]), params[0]["W"].shape)), every=8)
    )
    assert seen == [(8, 8, (5, 2)), (16, 16, (5, 2)), (24, 24, (5, 2)), (30, 30, (5, 2))]
    assert len(calls) == 4  # 0-8, 8-16, 16-24, 24-30
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)
    seen.clear()
    _, h = _fit(200, early_stopping=fnn.EarlyStopping(4), callback=fnn.Callback(lambda e, params, hist: seen.append(e), every=5))
    stop = h["epochs_run"]
    assert seen == ([*range(5, stop, 5), stop] if stop % 5 else list(range(5, stop + 1, 5)))


def test_fit_many_callback_gets_stacked_snapshots():
    seen = []
    _fit_many(12, callback=fnn.Callback(lambda e, p, h: seen.append((e, p[0]["W"].shape, h["loss"].shape)), every=6))
    assert seen == [(6, (3, 5, 2), (3, 6)), (12, (3, 5, 2), (3, 12))]


# ---- refusals -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("saved") / "run"
    _fit(12, checkpoint=fnn.Checkpointing(d, every=4, keep=10))
    return d


@pytest.mark.parametrize(
    "change, names",
    [
        ({"optimizer": optax.adam(0.01)}, ["optimizer"]),
        ({"grad": "autodiff"}, ["grad"]),
        ({"batch_size": 4}, ["batch_size"]),
        ({"shuffle": False}, ["shuffle"]),
        ({"data": (X[:32], Y[:32])}, ["data"]),
        ({"key": jax.random.key(7)}, ["key"]),
        ({"params": NET.init(jax.random.key(8))}, ["params"]),
        ({"validation": None, "early_stopping": None}, ["validation", "patience"]),
        ({"health": True}, ["health", "grad_norms"]),
        ({"optimizer": optax.sgd(0.1), "batch_size": 4}, ["optimizer", "batch_size"]),
    ],
)
def test_resuming_a_different_call_is_refused_naming_what_differs(saved_run, tmp_path, change, names):
    d = tmp_path / "run"
    shutil.copytree(saved_run, d)
    before = _files(d)
    kw = dict(change)
    params = kw.pop("params", "init")
    with pytest.raises(ValueError, match=r"cannot continue the run in .*: this call differs in " + ", ".join(names)) as info:
        _fit(12, params=params, checkpoint=fnn.Checkpointing(d, resume=True), **kw)
    fixed = set(names) & {"validation", "patience", "health", "grad_norms"}
    assert ("cannot change in a continued run" if fixed else f"override={tuple(names)!r}") in str(info.value)
    assert _files(d) == before


def test_resuming_another_network_or_dtype_is_refused(saved_run, tmp_path, x64):
    d = tmp_path / "run"
    shutil.copytree(saved_run, d)
    other = fnn.MLP((2, 6, 1), hidden="tanh")
    kw = _kw()
    with pytest.raises(
        ValueError, match=r"differs in network:\n  network: the checkpoint: sizes \[2, 5, 1\] \(tanh, identity\); "
    ):
        fnn.fit(
            other,
            other.init(jax.random.key(0), jnp.float32),
            kw.pop("data"),
            epochs=12,
            checkpoint=fnn.Checkpointing(d, resume=True),
            **kw,
        )
    with pytest.raises(ValueError, match="(?s)differs in dtype.*float32; this call: float64"):
        _fit(12, dtype=jnp.float64, checkpoint=fnn.Checkpointing(d, resume=True))


def test_an_override_lets_a_resume_change_the_optimizer(saved_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(saved_run, d)
    os.remove(d / "state-000000012.npz")  # resume from epoch 8
    p, h = _fit(12, checkpoint=fnn.Checkpointing(d, resume=True), optimizer=optax.adam(0.3), override=("optimizer",))
    want_p, want_h = _fit(12)
    assert h["loss"][:8].tobytes() == want_h["loss"][:8].tobytes()  # the saved history
    assert not np.array_equal(p[0]["W"], want_p[0]["W"])


def test_a_directory_with_checkpoints_needs_resume(saved_run):
    with pytest.raises(
        ValueError,
        match=r"already holds a run's checkpoints \(state-000000012.npz\): pass fnn.Checkpointing\(\.\.\., resume=True\)",
    ):
        _fit(12, checkpoint=fnn.Checkpointing(saved_run))


def test_a_state_from_another_network_or_trainer_is_refused():
    _, h = _fit(2, return_state=True)
    other = fnn.MLP((2, 5, 1), hidden="relu")
    kw = _kw()
    with pytest.raises(ValueError, match=r"cannot continue from `state`: this call differs in network"):
        fnn.fit(other, None, kw.pop("data"), epochs=2, state=h["state"], **kw)
    _, hm = _fit_many(2, return_state=True)
    with pytest.raises(ValueError, match="`state` was made by fit_many; pass it to fit_many"):
        _fit(2, state=hm["state"])
    with pytest.raises(ValueError, match="`state` was made by fit; pass it to fit, not fit_many"):
        _fit_many(2, state=h["state"])


# ---- damaged, foreign and newer files -------------------------------------------------------------
def _rewrite_header(path, change):
    import io
    import zipfile

    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    key = checkpoint.HEADER_KEY + ".npy"
    header = json.loads(np.load(io.BytesIO(entries[key])).tobytes())
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(change(header)).encode(), np.uint8))
    entries[key] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)


@pytest.mark.parametrize("damage", ["truncated", "bit flip"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage):
    want_p, want_h = _fit(20)
    _fit(20, checkpoint=fnn.Checkpointing(tmp_path, every=5, keep=3))
    latest = tmp_path / "state-000000020.npz"
    data = bytearray(latest.read_bytes())
    if damage == "truncated":
        latest.write_bytes(data[: len(data) // 2])
    else:  # inside the stored parameters: the zip's CRC or the SHA-256 catches it
        with np.load(latest) as z:
            W = z["params/layer0/W"].tobytes()
        at = data.find(W)
        data[at + 3] ^= 0x40
        latest.write_bytes(bytes(data))
    with pytest.warns(
        RuntimeWarning, match=r"state-000000020\.npz' is unreadable .* resuming from the one before it, state-000000015"
    ):
        p, h = _fit(20, checkpoint=fnn.Checkpointing(tmp_path, resume=True))
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)
    assert "state-000000020.npz.corrupt" in _files(tmp_path) and "state-000000020.npz" in _files(tmp_path)  # rewritten


def test_newer_format_and_parameter_files_are_refused_by_name(tmp_path):
    _fit(6, checkpoint=fnn.Checkpointing(tmp_path, every=3))
    latest = tmp_path / "state-000000006.npz"
    _rewrite_header(latest, lambda h: {**h, "version": 3})
    for read in (checkpoint.read_state, fnn.load):
        with pytest.raises(
            checkpoint.CheckpointVersionError, match="format version 3; this fnn reads versions 1 to 2 .*newer fnn"
        ):
            read(latest)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not taken for damage: no fallback past a newer file
        with pytest.raises(checkpoint.CheckpointVersionError, match="format version 3"):
            _fit(6, checkpoint=fnn.Checkpointing(tmp_path, resume=True))
    fnn.save(latest, NET, NET.init(jax.random.key(0)))  # a version-1 parameters file under a state's name
    with pytest.raises(checkpoint.CheckpointVersionError, match=r"a parameters checkpoint \(fnn.save, format version 1\)"):
        _fit(6, checkpoint=fnn.Checkpointing(tmp_path, resume=True))
    _rewrite_header(tmp_path / "state-000000003.npz", lambda h: {**h, "kind": "optimizer"})
    with pytest.raises(checkpoint.CheckpointVersionError, match="format version 2 has no kind 'optimizer'"):
        checkpoint.read_state(tmp_path / "state-000000003.npz")


def test_a_training_state_file_is_pickle_free_versioned_and_checksummed(tmp_path):
    _fit(4, checkpoint=fnn.Checkpointing(tmp_path, every=4))
    path = tmp_path / "state-000000004.npz"
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z[checkpoint.HEADER_KEY].tobytes())
        assert all(z[n].dtype != object for n in z.files)
    assert header["format"] == "fnn.checkpoint" and header["version"] == 2 and header["kind"] == "train_state"
    assert re.fullmatch(r"[0-9a-f]{64}", header["sha256"])
    names = {leaf["name"] for leaf in header["leaves"]}
    assert {"params/layer0/W", "best/layer1/b", "opt_state[0].count", "opt_state[0].mu[0]['W']", "key", "epoch"} <= names
    assert {"history/loss", "history/val_loss", "history/val_accuracy", "stop", "best_val", "best_epoch", "step"} <= names
    run = header["run"]
    assert run["facts"]["network"] == NET.to_json() and run["facts"]["batch_size"] == 8 and run["epoch"] == 4
    assert next(leaf for leaf in header["leaves"] if leaf["name"] == "key")["key_impl"] == "threefry2x32"


# ---- Ctrl-C, in this process --------------------------------------------------------------------
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_sigint_finishes_the_chunk_writes_a_checkpoint_and_raises(tmp_path):
    want_p, want_h = _fit(30)
    handler = signal.getsignal(signal.SIGINT)

    def press_ctrl_c(epoch, params, hist):
        if epoch == 10:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(
        KeyboardInterrupt, match=r"interrupted after epoch (\d+) .*checkpoint written to .*state-0000000\d\d\.npz"
    ) as e:
        _fit(30, checkpoint=fnn.Checkpointing(tmp_path, every=100), callback=fnn.Callback(press_ctrl_c, every=5))
    assert signal.getsignal(signal.SIGINT) is handler  # restored
    stopped = int(re.search(r"after epoch (\d+)", str(e.value)).group(1))
    assert 10 <= stopped < 30 and _files(tmp_path) == [f"state-{stopped:09d}.npz"]
    p, h = _fit(30, checkpoint=fnn.Checkpointing(tmp_path, every=100, resume=True))
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)


# ---- bad arguments: named, before anything is traced ----------------------------------------------
def _ck(**kw):
    return lambda d: fnn.Checkpointing(d / "D", **kw)


@pytest.mark.parametrize(
    "kw, error, match",
    [
        ({"checkpoint": _ck(every=0)}, ValueError, r"`checkpoint.every` must be an int in \[1, inf\), got 0"),
        ({"checkpoint": _ck(every=2.5)}, TypeError, "`checkpoint.every` must be an int >= 1, got float"),
        ({"checkpoint": _ck(every_s=-1)}, ValueError, "`checkpoint.every_s` must be a finite number > 0.0, got -1"),
        ({"checkpoint": _ck(every_s="1")}, TypeError, "`checkpoint.every_s` must be a real number, got str"),
        ({"checkpoint": _ck(keep=0)}, ValueError, r"`checkpoint.keep` must be an int in \[1, inf\), got 0"),
        ({"checkpoint": _ck(resume="yes")}, TypeError, "`checkpoint.resume` must be True or False, got str"),
        ({"checkpoint": lambda d: fnn.Checkpointing(d / "FILE")}, ValueError, "`checkpoint.dir` .* is a file"),
        ({"checkpoint": lambda d: fnn.Checkpointing(3)}, TypeError, "`checkpoint.dir` must be a directory path"),
        ({"checkpoint": lambda d: fnn.Checkpointing("")}, ValueError, "`checkpoint.dir` must be a non-empty path"),
        ({"checkpoint": lambda d: str(d / "D")}, TypeError, r"`checkpoint` must be an fnn.Checkpointing, e.g. checkpoint="),
        ({"checkpoint": _ck(resume=True), "override": "learning_rate"}, ValueError, r"`override` names \['learning_rate'\]"),
        ({"override": "optimizer"}, ValueError, "`override` applies to a continued run"),
        ({"checkpoint": _ck(), "override": "optimizer"}, ValueError, "`override` applies to a continued run"),
        ({"override": 3}, TypeError, "`override` must be a name or a tuple of names"),
        ({"state": {"epoch": 3}}, TypeError, "`state` must be the fnn.FitState"),
        ({"return_state": 1}, TypeError, "`return_state` must be True or False"),
        (
            {"callback": print},
            TypeError,
            r"`callback` must be an fnn.Callback\(fn, every=...\), got .*callback=fnn.Callback\(print",
        ),
        ({"callback": lambda d: fnn.Callback("print", 2)}, TypeError, "`callback.fn` must be callable"),
        ({"callback": lambda d: fnn.Callback(print, 0)}, ValueError, r"`callback.every` must be an int in \[1, inf\), got 0"),
    ],
)
def test_bad_arguments_are_named_before_anything_is_traced(tmp_path, kw, error, match):
    """The records check their fields when made, the call checks the rest at the door: nothing compiles,
    nothing is written. (A lambda builds the argument, so that a record's own check runs in the test.)"""
    (tmp_path / "FILE").write_text("not a directory")
    misses = _loop.compiled_runner.cache_info().misses
    for train in (_fit, _fit_many):
        with pytest.raises(error, match=match):
            built = {
                k: (v(tmp_path) if k in ("checkpoint", "callback") and getattr(v, "__name__", "") == "<lambda>" else v)
                for k, v in kw.items()
            }
            train(3, **built)
    assert _loop.compiled_runner.cache_info().misses == misses
    assert not (tmp_path / "D").exists()


def test_the_records_are_frozen_values():
    a, b = fnn.Checkpointing("runs/a", every=10), fnn.Checkpointing(pathlib.Path("runs/a"), every=10)
    assert a == b and hash(a) == hash(b) and a.dir == pathlib.Path("runs/a") and a.every_s is None
    assert fnn.Checkpointing("r", every=np.int64(4), every_s=np.float32(2)).every == 4
    assert type(fnn.Checkpointing("r", every=np.int64(4)).every) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.keep = 5
    assert fnn.Callback(print, every=3) == fnn.Callback(print, 3) != fnn.Callback(print, 4)


# ---- fnn 0.1's keywords: still taken, for one release, with a warning that spells the new call ------------
@pytest.mark.parametrize("train", ["fit", "fit_many"])
def test_the_0_1_keywords_warn_with_the_new_spelling_and_give_bitwise_the_same_run(tmp_path, train):
    run = _fit if train == "fit" else _fit_many
    want_p, want_h = run(12, checkpoint=fnn.Checkpointing(tmp_path / "new", every=4, keep=2))
    message = (
        rf"{train}\(`checkpoint_dir`, `checkpoint_every`, `keep`=...\) is deprecated: pass "
        rf"checkpoint=fnn.Checkpointing\('{re.escape(str(tmp_path / 'old'))}', every=4, keep=2\)"
    )
    with pytest.warns(DeprecationWarning, match=message) as record:
        p, h = run(12, checkpoint_dir=tmp_path / "old", checkpoint_every=4, keep=2)
    assert record[0].filename == __file__  # the warning points at the caller
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)
    assert _files(tmp_path / "old") == _files(tmp_path / "new") == ["state-000000008.npz", "state-000000012.npz"]
    with pytest.warns(DeprecationWarning, match=r"`checkpoint_dir`, `resume`=...\) is deprecated: .*resume=True\)"):
        p, h = run(12, checkpoint_dir=tmp_path / "old", resume=True)
    assert_bitwise(p, want_p)
    seen = []
    with pytest.warns(DeprecationWarning, match=r"callback_every=...\) is deprecated: pass callback=fnn.Callback\(fn, every=6\)"):
        run(12, callback=lambda e, p, h: seen.append(e), callback_every=6)
    assert seen == [6, 12]


def test_the_0_1_keywords_and_their_records_together_are_refused_naming_both(tmp_path):
    with pytest.raises(TypeError, match=r"fit\(\) got `checkpoint` and the deprecated `checkpoint_dir`, `keep`: pass only"):
        _fit(3, checkpoint=fnn.Checkpointing(tmp_path), checkpoint_dir=tmp_path, keep=2)
    with pytest.raises(TypeError, match=r"fit_many\(\) got `checkpoint` and the deprecated `resume`"):
        _fit_many(3, checkpoint=fnn.Checkpointing(tmp_path), resume=True)
    with pytest.raises(TypeError, match=r"got `callback` as an fnn.Callback and the deprecated `callback_every`"):
        _fit(3, callback=fnn.Callback(print, 2), callback_every=2)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kw, error, match",
    [  # 0.1's refusals of its keywords, kept
        ({"checkpoint_dir": "D", "checkpoint_every": 0}, ValueError, r"`checkpoint.every` must be an int in \[1, inf\)"),
        ({"checkpoint_dir": "D", "keep": 0}, ValueError, r"`checkpoint.keep` must be an int in \[1, inf\)"),
        ({"checkpoint_every": 5}, ValueError, "`checkpoint_every` needs `checkpoint_dir`"),
        ({"checkpoint_every_s": 5.0}, ValueError, "`checkpoint_every_s` needs `checkpoint_dir`"),
        ({"resume": True}, ValueError, "`resume=True` needs `checkpoint_dir`"),
        ({"callback_every": 3}, ValueError, "`callback_every` needs `callback`"),
        ({"callback": print, "callback_every": 0}, ValueError, r"`callback.every` must be an int in \[1, inf\)"),
    ],
)
def test_the_0_1_keywords_are_still_checked(tmp_path, kw, error, match):
    kw = {k: (str(tmp_path / v) if k == "checkpoint_dir" else v) for k, v in kw.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for train in (_fit, _fit_many):
            with pytest.raises(error, match=match):
                train(3, **kw)
    assert not (tmp_path / "D").exists()


def test_a_0_1_default_without_a_directory_warns_and_does_nothing(tmp_path):
    with pytest.warns(
        DeprecationWarning, match=r"fit\(`keep`, `resume`=...\) is deprecated and does nothing without a directory"
    ):
        p, _ = _fit(3, keep=3, resume=False)
    assert_bitwise(p, _fit(3)[0])


@pytest.mark.parametrize("train", [fnn.fit, fnn.fit_many])
def test_fit_and_fit_many_take_at_most_26_parameters_and_share_their_options(train):
    """0.1: fit took 28 parameters and fit_many 30, ten of them about long runs; now five (checkpoint,
    state, return_state, override, callback), the same in both, and the 0.1 keywords are not in the
    signature (the wrapper that takes them is transparent to inspect). 0.3 added one, ``l2`` (L2 weight
    decay in the objective)."""
    import inspect

    params = inspect.signature(train).parameters
    assert len(params) <= (24 if train is fnn.fit else 26)
    assert not {"checkpoint_dir", "checkpoint_every", "checkpoint_every_s", "keep", "resume", "callback_every"} & set(params)
    assert all(p.kind is not p.VAR_KEYWORD for p in params.values())
    fit_kw = {n for n, p in inspect.signature(fnn.fit).parameters.items() if p.kind is p.KEYWORD_ONLY}
    many_kw = {n for n, p in inspect.signature(fnn.fit_many).parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert fit_kw - {"key"} <= many_kw and many_kw - fit_kw == {"num_networks", "params", "hyperparams"}
    for name in ("checkpoint", "state", "return_state", "override", "callback"):
        assert inspect.signature(fnn.fit).parameters[name].default == inspect.signature(fnn.fit_many).parameters[name].default


def test_weak_types_survive_a_checkpoint(tmp_path, caplog):
    """An optimizer state with a weakly typed leaf resumes bitwise, with no new compilation of the loop."""

    def weak_sgd():
        def init(params):
            return {"rate": jnp.asarray(0.1)}  # a Python float: weakly typed

        def update(g, s, p=None):
            return jax.tree_util.tree_map(lambda a: -s["rate"] * a, g), s

        return optax.GradientTransformation(init, update)

    opt = weak_sgd()
    want_p, want_h = _fit(12, optimizer=opt)
    _fit(12, optimizer=opt, checkpoint=fnn.Checkpointing(tmp_path / "run", every=4, keep=10))
    header, _ = checkpoint.read_state(tmp_path / "run" / "state-000000004.npz")
    assert [leaf.get("weak") for leaf in header["leaves"] if leaf["name"] == "opt_state['rate']"] == [True]
    d = _copy_one(tmp_path / "run", "state-000000004.npz", tmp_path / "from4")
    with no_new_training_loop(caplog):  # a strongly typed leaf would compile the loop again
        p, h = _fit(12, optimizer=opt, checkpoint=fnn.Checkpointing(d, resume=True))
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)


# ---- killed processes (slow tier) -----------------------------------------------------------------
# `mode`: "run" (train and exit), "hold" (train, then wait to be killed: a kill after any announcement lands
# on a live process) or "stop:N" (announce the N-th checkpoint's save with its temporary file written, then
# wait inside that save, before its rename, for a line on stdin: the parent kills it there, or signals it and
# lets it go on). An EOF on stdin means the parent is gone: the child then exits at once.
WORKER = r"""
import os, sys
trainer, ckdir, out, mode = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
stop_at = int(mode[5:]) if mode.startswith("stop:") else 0
saves = 0
def wait():
    if not sys.stdin.readline():
        os._exit(3)
_replace = os.replace
def replace(src, dst):  # every checkpoint is announced (its temporary file is written, not yet renamed)
    global saves
    if os.path.basename(str(dst)).startswith("state-"):
        saves += 1
        print("saving", os.path.basename(str(dst)), flush=True)
        if saves == stop_at:
            wait()
    return _replace(src, dst)
os.replace = replace
import jax, jax.numpy as jnp, numpy as np, optax, fnn
x = jax.random.normal(jax.random.key(0), (1600, 2))
y = jnp.sin(2 * x[:, :1]) * jnp.cos(x[:, 1:])
net = fnn.MLP((2, 16, 1), hidden="tanh")
if trainer == "fit_blocks":  # batch norm's running statistics and dropout's masks in the carry
    net = fnn.MLP((2, 16, 16, 1), hidden="tanh", norm="batch", dropout=0.2, residual=True)
kw = dict(loss="mse", epochs=600, batch_size=16, key=jax.random.key(1), progress=False)
if ckdir != "-":
    kw.update(checkpoint=fnn.Checkpointing(ckdir, every=15, resume=True))
print("ready", flush=True)
if trainer in ("fit", "fit_blocks"):
    p, h = fnn.fit(net, net.init(jax.random.key(0)), (x, y), optimizer=optax.adam(0.01), validation=(x[:64], y[:64]),
                   early_stopping=fnn.EarlyStopping(1000), **kw)
else:
    p, h = fnn.fit_many(net, (x, y), optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), num_networks=3,
                        hyperparams={"learning_rate": jnp.array([0.05, 0.2, 40.0])}, **kw)
leaves = {f"p{i}": np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(p))}
hist = {f"h_{k}": np.asarray(v) for k, v in h.items()}
np.savez(out, **leaves, **hist)
print("done", flush=True)
if mode == "hold":
    wait()
"""


def _worker(trainer, ckdir, out, mode="run"):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, trainer, str(ckdir), str(out), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def _finish(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out


def _same_npz(a, b):
    with np.load(a) as u, np.load(b) as v:
        assert set(u.files) == set(v.files)
        for k in u.files:
            assert u[k].dtype == v[k].dtype and u[k].tobytes() == v[k].tobytes(), k


def _announced(proc, saves):
    """Read ``proc``'s output up to its ``saves``-th checkpoint announcement: that file's name (None if the
    run ended first)."""
    seen = 0
    for line in proc.stdout:
        if line.startswith("saving"):
            seen += 1
            if seen == saves:
                return line.split()[1]
        if line.startswith("done"):
            break
    return None


def _kill_during(proc, saves, rng, in_save):
    """SIGKILL ``proc`` after its ``saves``-th checkpoint announcement: at once (``in_save``: the child,
    started with ``stop:{saves}``, is then waiting inside that save, its temporary file written, not yet
    renamed) or a random moment later (the child, started with ``hold``, is alive whatever it got to by
    then). Returns the announced file's name."""
    try:
        name = _announced(proc, saves)
        if name is not None and not in_save:
            time.sleep(rng.uniform(0.0, 0.05))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    return name


@pytest.mark.slow  # fresh processes: ~20 of them
@pytest.mark.parametrize("trainer, chains", [("fit", [3, 3, 2, 2]), ("fit_many", [2, 2]), ("fit_blocks", [2, 2])])
def test_sigkill_at_random_points_and_during_saves_then_resume_bitwise(tmp_path, trainer, chains):
    """Each chain kills a run again and again (the second and later runs resume, and are killed in turn)
    and then lets it finish: its final params and history are those of an uninterrupted run. Half of the
    kills land inside a save, between its temporary file and its rename (the child waits there to be
    killed); the others a random moment after a checkpoint, wherever the run got to."""
    rng = random.Random(17)
    _finish(_worker(trainer, "-", tmp_path / "want.npz"))
    kills = 0
    for c, n_kills in enumerate(chains):
        ckdir = tmp_path / f"chain{c}"
        for k in range(n_kills):
            in_save = (c + k) % 2 == 0  # half of the kills land inside a save
            done = max([int(p.name[6:15]) for p in ckdir.glob("state-*.npz")], default=0)
            left = (600 - done) // 15  # the checkpoints this run will write (every 15 of 600 epochs)
            saves = rng.randint(1, max(1, left // 2))
            proc = _worker(trainer, ckdir, tmp_path / "unused.npz", mode=f"stop:{saves}" if in_save else "hold")
            name = _kill_during(proc, saves, rng, in_save)
            assert name == f"state-{done + 15 * saves:09d}.npz", "the run did not announce the checkpoint it was to write"
            assert proc.returncode == -signal.SIGKILL
            kills += 1
            if in_save:  # the interrupted save left its temporary file, complete, and no new checkpoint
                assert not (ckdir / name).exists()
                temps = [p for p in ckdir.iterdir() if p.name.startswith(f".{name}.{proc.pid}.")]
                assert len(temps) == 1 and temps[0].name.endswith(checkpoint.TEMP_SUFFIX), sorted(os.listdir(ckdir))
                header, _ = checkpoint.read_state(temps[0])
                assert header["run"]["epoch"] == done + 15 * saves
        out = _finish(_worker(trainer, ckdir, tmp_path / f"got{c}.npz"))
        assert "done" in out
        _same_npz(tmp_path / f"got{c}.npz", tmp_path / "want.npz")
        assert not any(p.name.endswith(checkpoint.TEMP_SUFFIX) for p in ckdir.iterdir())  # the killed saves' leftovers are gone
    assert kills == sum(chains)


@pytest.mark.slow  # a fresh process
def test_sigint_in_a_subprocess_writes_a_checkpoint_that_resumes_bitwise(tmp_path):
    """A Ctrl-C that lands inside a save (the child waits there, before the rename, until the signal is
    sent): the save completes, and the run stops with that checkpoint, which resumes bitwise."""
    _finish(_worker("fit", "-", tmp_path / "want.npz"))
    proc = _worker("fit", tmp_path / "run", tmp_path / "unused.npz", mode="stop:2")
    name = _announced(proc, 2)
    assert name == "state-000000030.npz"
    proc.send_signal(signal.SIGINT)  # pending in the child before it reads the line that lets it go on
    _, err = proc.communicate("go\n", timeout=300)
    assert proc.returncode != 0
    m = re.search(r"KeyboardInterrupt: training interrupted after epoch (\d+) .*checkpoint written to '([^']+)'", err)
    assert m, err[-3000:]
    assert m.group(1) == "30" and os.path.exists(m.group(2)) and os.path.basename(m.group(2)) == name
    _finish(_worker("fit", tmp_path / "run", tmp_path / "got.npz"))
    _same_npz(tmp_path / "got.npz", tmp_path / "want.npz")


def test_howto_long_runs_example_runs(tmp_path, capsys):
    page = (REPO_PATH / "docs" / "howto" / "long_runs.md").read_text()
    code = re.search(r"# Long runs: checkpoints and resuming\n.*?```python\n(.*?)```", page, re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the page spells every call the current way
        exec(compile(code.replace("/tmp/moons", str(tmp_path / "moons")), "docs/howto/long_runs.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "True"
    assert sorted(p.name for p in (tmp_path / "moons").iterdir()) == [f"state-{e:09d}.npz" for e in (200, 250, 300)]


@pytest.mark.slow  # a benchmark section end to end, in smoke mode (timings are not checked)
def test_benchmark_section_measures_all_three_ways(tmp_path):
    from benchmarks import _bench_peers, _bench_resume
    from experiments import _common

    args = _common.parse_args("section 8\n", "benchmark", ["--smoke", "--out", str(tmp_path)])
    res = _bench_resume.run(args, jax.random.key(0))
    assert [r["problem"] for r in res["rows"]] == ["mlp", "xor"]
    for r in res["rows"]:
        assert r["plain_s"] > 0 and r["default_ratio"] > 0 and r["every_1s_ratio"] > 0 and r["per_save_ms"] > 0
        assert r["saves_per_call"]["default"] == 1.0  # a short run: only the checkpoint at its end
    rows = _bench_resume.headlines(res, _bench_peers.readme_row)
    assert [h["anchor"] for h in rows] == ["≤ 1.05", ""] and all(h["readme"] for h in rows)


def test_a_diverged_run_resumes_to_the_same_divergence(tmp_path):
    kw = {"optimizer": optax.sgd(40.0), "validation": None, "early_stopping": None}
    with pytest.raises(fnn.TrainingDiverged) as want:
        _fit(30, **kw)
    with pytest.raises(fnn.TrainingDiverged):
        _fit(30, checkpoint=fnn.Checkpointing(tmp_path / "run", every=1, keep=100), **kw)
    e = want.value.epoch
    assert e >= 1 and _files(tmp_path / "run")[-1] == f"state-{e + 1:09d}.npz"  # the final one, diverged
    d = _copy_one(tmp_path / "run", f"state-{e:09d}.npz", tmp_path / "before")  # the epoch before it diverged
    with pytest.raises(fnn.TrainingDiverged) as got:
        _fit(30, checkpoint=fnn.Checkpointing(d, resume=True), **kw)
    assert got.value.epoch == e
    assert_bitwise(got.value.params, want.value.params)
    assert_same_history(got.value.history, want.value.history)


def test_a_call_that_continues_a_state_resumes_from_its_own_checkpoints(tmp_path):
    _, h1 = _fit(10, return_state=True)
    want_p, want_h = _fit(10, params=None, state=h1["state"], checkpoint=fnn.Checkpointing(tmp_path / "run", every=3, keep=10))
    assert _files(tmp_path / "run") == [f"state-{e:09d}.npz" for e in (12, 15, 18, 20)]  # epochs of the run, 10 … 20
    d = _copy_one(tmp_path / "run", "state-000000015.npz", tmp_path / "from15")
    p, h = _fit(10, params=None, state=h1["state"], checkpoint=fnn.Checkpointing(d, resume=True))
    assert_bitwise(p, want_p)
    assert_same_history(h, want_h)
    assert h["epochs_run"] == 10 and len(h["loss"]) == 10
    with pytest.raises(ValueError, match="it is a call that began at epoch 10, this call begins at epoch 0"):
        _fit(10, checkpoint=fnn.Checkpointing(d, resume=True))
