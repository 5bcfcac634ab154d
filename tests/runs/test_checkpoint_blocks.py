"""Checkpoints of networks of blocks and of models: bitwise round trips of every leaf (running statistics
included) by its key path, stacked params, the user's own blocks and models supplied by name, clear errors
for files that do not fit; and the MLP format unchanged, byte for byte."""

import base64
import collections
import dataclasses
import io
import json
import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fnn.checkpoint import CheckpointError, CheckpointVersionError

import fnn
from fnn import checkpoint
from fnn.check import first_use
from fnn.core.blocks import Activate, BatchNorm, Block, Dense, Dropout, LayerNorm, Residual
from fnn.runs import _format

# BN, dropout, a residual with a projection around a nested residual: every kind of leaf and nesting
NET = fnn.Network(
    3,
    [
        Dense(4),
        BatchNorm(),
        Activate("tanh"),
        Dropout(0.25),
        Residual([Dense(5), LayerNorm(), Activate("relu"), Residual([Dense(5), BatchNorm(momentum=0.2)])]),
        Dense(2),
    ],
    output="softmax",
)


def bits(a) -> np.ndarray:
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def filled(net, dtype=np.float32, seed=0, stack=None):
    """``net.init``'s tree, every leaf (running statistics too) random numbers drawn in numpy, with NaN,
    -0, inf and a subnormal in the first leaf; leaves (stack, ...) if stacked."""
    rng, lead = np.random.default_rng(seed), () if stack is None else (stack,)
    template = jax.eval_shape(lambda: net.init(jax.random.key(0)))

    def leaf(s):
        return rng.normal(size=lead + s.shape).astype(dtype)

    params = jax.tree_util.tree_map(leaf, template)
    first = jax.tree_util.tree_leaves(params)[0].reshape(-1)
    first[:4] = np.array([np.nan, -0.0, np.inf, np.finfo(dtype).smallest_subnormal], dtype)
    return jax.tree_util.tree_map(jnp.asarray, params)


def assert_bitwise(got, want):
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert isinstance(g, jax.Array) and g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(bits(g), bits(w))


def header_of(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return json.loads(f[checkpoint.HEADER_KEY].tobytes().decode())


def npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def rewrite_header(path, change):
    """The file with its header replaced by ``change(header)`` (a valid zip, fresh CRCs)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    name = checkpoint.HEADER_KEY + ".npy"
    header = json.loads(np.load(io.BytesIO(entries[name])).tobytes())
    entries[name] = npy_bytes(np.frombuffer(json.dumps(change(header)).encode(), np.uint8))
    with zipfile.ZipFile(path, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)


# ---- Networks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_network_round_trip_is_bitwise_running_statistics_included(tmp_path, dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    params = filled(NET, np.dtype(dtype))
    path = checkpoint.save(tmp_path / "net.npz", NET, params, epoch=4)
    net, loaded, meta = fnn.load(path)
    assert net == NET and meta == {"epoch": 4}
    assert_bitwise(loaded, params)
    assert isinstance(loaded, list) and isinstance(loaded[4]["blocks"], list)
    header = header_of(path)
    assert (header["version"], header["kind"], header["stacked"]) == (2, "tree_params", None)
    assert header["net"] == NET.to_json()
    names = [leaf["name"] for leaf in header["leaves"]]
    assert names == checkpoint.param_names(NET)
    assert "params[1]['state']['mean']" in names and "params[4]['blocks'][3]['blocks'][1]['state']['var']" in names
    assert "params[4]['proj']['W']" in names  # width 4 -> 5: a projection, under the residual's own key
    assert "params[4]['blocks'][3]['proj']['W']" not in names  # 5 -> 5: none
    assert {leaf["dtype"] for leaf in header["leaves"]} == {dtype}
    if dtype == "float64":
        jax.config.update("jax_enable_x64", False)  # the fixture restores it
        with pytest.raises(ValueError, match="jax_enable_x64"):
            fnn.load(path)


def test_stacked_network_params_round_trip(tmp_path):
    params = filled(NET, seed=1, stack=3)
    path = checkpoint.save(tmp_path / "ens.npz", NET, params, members=3)
    net, loaded, meta = fnn.load(path)
    assert net == NET and meta == {"members": 3} and header_of(path)["stacked"] == 3
    assert_bitwise(loaded, params)
    assert loaded[1]["state"]["var"].shape == (3, 4)
    bad = jax.tree_util.tree_map(lambda a: a, params)
    bad[5]["b"] = bad[5]["b"][:2]
    with pytest.raises(ValueError, match="leading sizes differ"):
        checkpoint.save(tmp_path / "bad.npz", NET, bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens.npz"]


def test_a_network_without_parameters_and_one_that_is_an_mlp_option(tmp_path):
    bare = fnn.Network(2, [Activate("relu")])
    net, loaded, _ = fnn.load(checkpoint.save(tmp_path / "bare.npz", bare, bare.init(jax.random.key(0))))
    assert net == bare and loaded == [{}]
    mlp = fnn.MLP((2, 3, 1), norm="layer", residual=True)  # a Network of blocks
    params = filled(mlp, seed=2)
    net, loaded, _ = fnn.load(checkpoint.save(tmp_path / "mlp.npz", mlp, params))
    assert net == mlp
    assert_bitwise(loaded, params)


def test_network_params_that_do_not_fit_are_refused_before_writing(tmp_path):
    params = filled(NET)
    del params[1]["state"]
    with pytest.raises(ValueError, match=r"`params\[1\]` must be a dict with keys \['beta', 'gamma', 'state'\]"):
        checkpoint.save(tmp_path / "x.npz", NET, params)
    with pytest.raises(ValueError, match="blocks"):
        checkpoint.save(tmp_path / "x.npz", NET, filled(fnn.Network(3, [Dense(2)])))
    with pytest.raises(
        TypeError,
        match=r"`net` must be an fnn.MLP, got dict: .* \(a checkpoint takes an fnn.MLP, an fnn.Network of blocks or an",
    ):
        checkpoint.save(tmp_path / "x.npz", NET.to_json(), filled(NET))
    assert not list(tmp_path.iterdir())


# ---- blocks and activations of your own ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Scale(Block):
    """y = a ⊙ x, a learned per-feature scale starting at ``start``."""

    start: float = 1.0

    def init(self, key, n_in, dtype):
        return {"a": jnp.full((n_in,), self.start, dtype)}

    def forward(self, params, x, key=None, train=True):
        return params["a"] * x, None, x

    def backward(self, params, res, dy):
        return {"a": jnp.sum(dy * res, axis=0)}, dy * params["a"]


@dataclasses.dataclass(frozen=True)
class ScaleShift(Scale):
    """Scale, changed since a save: its init makes one more leaf."""

    def init(self, key, n_in, dtype):
        return {"a": jnp.full((n_in,), self.start, dtype), "c": jnp.zeros((n_in,), dtype)}


SWISH = fnn.Activation(
    "swish", lambda z: z * jax.nn.sigmoid(z), lambda z, h: jax.nn.sigmoid(z) * (1 + z * (1 - jax.nn.sigmoid(z)))
)


@pytest.fixture
def unchecked(monkeypatch):
    """Networks built here skip the first-use check of a user's block (fnn.check's business, tested there):
    these tests are about what a checkpoint stores of it."""
    monkeypatch.setattr(first_use, "verify_once", lambda *args, **kwargs: None)
    with fnn.check.on_first_use("off"):
        yield


def test_a_block_of_yours_is_named_in_the_file_and_supplied_on_load(tmp_path, unchecked):
    net = fnn.Network(3, [Dense(4), Residual([Scale(2.0), Activate(SWISH)]), Dense(1)])
    params = filled(net, seed=3)
    path = checkpoint.save(tmp_path / "custom.npz", net, params)
    block = header_of(path)["net"]["blocks"][1]["blocks"][0]
    assert block == {"block": "Scale", "start": 2.0, "custom": True}
    with pytest.raises(CheckpointError, match=r"block\(s\) \['Scale'\] and activation\(s\) \['swish'\] that you wrote") as e:
        fnn.load(path)
    assert "load(path, blocks={'Scale': Scale}, activations={'swish': <your fnn.Activation>})" in str(e.value)
    with pytest.raises(CheckpointError, match=r"activation\(s\) \['swish'\].*load\(path, activations="):
        fnn.load(path, blocks={"Scale": Scale})
    loaded_net, loaded, _ = fnn.load(path, activations={"swish": SWISH}, blocks={"Scale": Scale})
    assert loaded_net == net
    assert_bitwise(loaded, params)
    # the class changed since: its init makes another tree, named as such
    with pytest.raises(
        CheckpointError,
        match=r"another parameter tree .* params\[1\]\['blocks'\]\[0\] has the entries \['a'\] in the file, \['a', 'c'\]",
    ):
        fnn.load(path, activations={"swish": SWISH}, blocks={"Scale": ScaleShift})
    with pytest.raises(TypeError, match=r"`blocks\['Scale'\]` must be a subclass of fnn.blocks.Block"):
        fnn.load(path, blocks={"Scale": Scale(2.0)})


# ---- Models ----------------------------------------------------------------------------------------------
Pair = collections.namedtuple("Pair", "w b")


def _init(key):
    k1, k2 = jax.random.split(key)
    return {
        "enc": (jax.random.normal(k1, (3, 4)), [jnp.zeros(4), jnp.ones(())]),
        "head": Pair(jax.random.normal(k2, (4, 2)), jnp.zeros(2)),
        "none": None,
    }


def _apply(p, x):
    h = jnp.tanh(x @ p["enc"][0] + p["enc"][1][0]) * p["enc"][1][1]
    return h @ p["head"].w + p["head"].b


MODEL = fnn.Model(_init, _apply, sizes=(3, 2), output="softmax", name="two_layer")


def test_model_round_trip_keeps_dicts_tuples_lists_and_named_tuples(tmp_path):
    params = filled(MODEL, seed=4)
    path = checkpoint.save(tmp_path / "model.npz", MODEL, params, note="m")
    with pytest.raises(CheckpointError, match=r"an fnn.Model 'two_layer' .* load it with load\(path, model=<your fnn.Model>\)"):
        fnn.load(path)
    model, loaded, meta = fnn.load(path, model=MODEL)
    assert model is MODEL and meta == {"note": "m"}
    assert_bitwise(loaded, params)
    assert isinstance(loaded["enc"], tuple) and isinstance(loaded["enc"][1], list) and isinstance(loaded["head"], Pair)
    assert loaded["none"] is None
    header = header_of(path)
    assert header["net"] == {"kind": "model", "name": "two_layer", "sizes": [3, 2], "output": {"name": "softmax"}}
    assert [leaf["name"] for leaf in header["leaves"]] == [
        "params['enc'][0]",
        "params['enc'][1][0]",
        "params['enc'][1][1]",
        "params['head'].w",
        "params['head'].b",
    ]
    assert header["tree"]["children"][0] == [
        "['enc']",
        {"type": "tuple", "children": [["[0]", 0], ["[1]", {"type": "list", "children": [["[0]", 1], ["[1]", 2]]}]]},
    ]
    assert header["tree"]["children"][1][1]["type"] == "Pair"


def test_stacked_model_params_and_a_single_array(tmp_path):
    params = MODEL.init_stacked(jax.random.key(0), 2)
    _, loaded, _ = fnn.load(checkpoint.save(tmp_path / "s.npz", MODEL, params), model=MODEL)
    assert_bitwise(loaded, params)
    single = fnn.Model(lambda k: jax.random.normal(k, (3, 2)), lambda p, x: x @ p, sizes=(3, 2))
    w = single.init(jax.random.key(1))
    path = checkpoint.save(tmp_path / "one.npz", single, w)
    assert [leaf["name"] for leaf in header_of(path)["leaves"]] == ["params"]
    assert_bitwise(fnn.load(path, model=single)[1], w)


def test_a_model_that_does_not_fit_is_refused_by_name(tmp_path):
    params = filled(MODEL, seed=5)
    path = checkpoint.save(tmp_path / "model.npz", MODEL, params)

    def listed(key):  # the same arrays, "enc" a list where the saved one had a tuple
        p = _init(key)
        return {**p, "enc": list(p["enc"])}

    with pytest.raises(CheckpointError, match=r"params\['enc'\] is a tuple in the file, a list in model.init's"):
        fnn.load(path, model=fnn.Model(listed, _apply, sizes=(3, 2), output="softmax", name="two_layer"))
    with pytest.raises(CheckpointError, match=r"the saved one has sizes \[3, 2\] \(yours: \[3, 5\]\)"):
        fnn.load(path, model=fnn.Model(_init, _apply, sizes=(3, 5), output="softmax", name="two_layer"))
    with pytest.raises(CheckpointError, match=r"name 'two_layer' \(yours: 'model'\)"):
        fnn.load(path, model=fnn.Model(_init, _apply, sizes=(3, 2), output="softmax"))

    def wider(key):
        p = _init(key)
        return {**p, "head": Pair(jnp.zeros((4, 3)), jnp.zeros(3))}

    with pytest.raises(
        CheckpointError, match=r"leaf params\['head'\].w has shape \(4, 2\) in the file, \(4, 3\) in model.init's"
    ):
        fnn.load(path, model=fnn.Model(wider, _apply, sizes=(3, 2), output="softmax", name="two_layer"))
    with pytest.raises(CheckpointError, match="holds an fnn.Network of blocks, not an fnn.Model"):
        fnn.load(checkpoint.save(tmp_path / "net.npz", NET, filled(NET)), model=MODEL)
    with pytest.raises(
        ValueError, match=r"structure of the model's init\(key\) result: params\['head'\] is a tuple in `params`, a Pair"
    ):
        checkpoint.save(tmp_path / "bad.npz", MODEL, {**params, "head": tuple(params["head"])})
    with pytest.raises(TypeError, match="must hold float arrays"):
        checkpoint.save(tmp_path / "bad.npz", MODEL, {**params, "none": jnp.arange(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "net.npz"]


# ---- damaged and mismatched files ----------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    params = filled(NET, seed=6)
    return checkpoint.save(tmp_path / "net.npz", NET, params, epoch=1), params


def test_a_flipped_bit_or_a_truncated_file_is_a_checkpoint_error(saved):
    path, params = saved
    data = bytearray(path.read_bytes())
    at = data.find(np.asarray(params[4]["blocks"][3]["blocks"][1]["state"]["var"]).tobytes())  # a running statistic's bytes
    assert at > 0
    data[at + 2] ^= 0x08
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC|SHA-256"):
        fnn.load(path)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        fnn.load(path)


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda h: {**h, "tree": {**h["tree"], "type": "tuple"}},
            r"params is a tuple in the file, a list in the rebuilt network's",
        ),
        (lambda h: {**h, "leaves": h["leaves"][:-1]}, r"the file lacks the parameter leaves \[\"params\[5\]\['b'\]\"\]"),
        (
            lambda h: {**h, "leaves": [{**h["leaves"][0], "shape": [9, 9]}, *h["leaves"][1:]]},
            r"leaf params\[0\]\['W'\] has shape \(9, 9\) in the file, \(4, 3\) in the rebuilt network's",
        ),
        (lambda h: {**h, "stacked": 2}, r"stacked 2\) do not match its tree"),
        (lambda h: {**h, "net": {**h["net"], "kind": "mystery"}}, r"malformed header \(net kind 'mystery'\)"),
        (lambda h: {k: v for k, v in h.items() if k != "tree"}, r"malformed header \(KeyError: 'tree'\)"),
        (
            lambda h: {**h, "leaves": [{**h["leaves"][0], "dtype": "int32", "stored": "int32"}, *h["leaves"][1:]]},
            "int32, not a float",
        ),
    ],
    ids=["tree", "leaf missing", "shape", "stacked", "net kind", "no tree", "dtype"],
)
def test_a_header_that_does_not_fit_is_a_checkpoint_error(saved, change, match):
    path, _ = saved
    rewrite_header(path, change)
    with pytest.raises(CheckpointError, match=match):
        fnn.load(path)


def test_a_reader_without_the_tree_kinds_refuses_them_by_kind(saved, monkeypatch):
    """What an fnn from before these kinds does with the new files: a version error (never taken for damage,
    so a resumed run does not move the file aside), not a malformed header."""
    path, _ = saved
    monkeypatch.setattr(_format, "KINDS", ((1, "params"), (2, "train_state")))
    with pytest.raises(CheckpointVersionError, match="format version 2 has no kind 'tree_params'"):
        fnn.load(path)


# ---- nothing saved is ever lost -----------------------------------------------------------------------------
def test_a_failed_save_of_a_network_leaves_the_previous_checkpoint(saved, monkeypatch):
    path, params = saved
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        checkpoint.save(path, MODEL, filled(MODEL))
    monkeypatch.undo()
    bad = filled(NET)
    bad[0]["W"] = bad[0]["W"][:, :2]
    with pytest.raises(ValueError, match=r"params\[0\]\['W'\]"):
        checkpoint.save(path, NET, bad)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["net.npz"]
    assert_bitwise(fnn.load(path)[1], params)
    # a save over it replaces it whole: an MLP's file where a network's was, and back
    mlp = fnn.MLP((2, 3, 1))
    checkpoint.save(path, mlp, mlp.init(jax.random.key(0)))
    assert fnn.load(path)[0] == mlp
    checkpoint.save(path, NET, params, epoch=9)
    net, loaded, meta = fnn.load(path)
    assert net == NET and meta == {"epoch": 9} and [p.name for p in path.parent.iterdir()] == ["net.npz"]
    assert_bitwise(loaded, params)


# ---- training states of a network -------------------------------------------------------------------------
def _state_arrays(net, params, best):
    names = checkpoint.param_names(net)
    arrays = dict(zip(names, map(np.asarray, jax.tree_util.tree_leaves(params))))
    arrays.update(zip(checkpoint.param_names(net, "best"), map(np.asarray, jax.tree_util.tree_leaves(best))))
    arrays.update({"opt_state[0].count": np.int32(7), "epoch": np.int32(3), "key": np.arange(2, dtype=np.uint32)})
    return arrays


@pytest.mark.parametrize("stack", [None, 2])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_network_training_state_round_trips(tmp_path, stack, early_stopping):
    params, best = filled(NET, seed=7, stack=stack), filled(NET, seed=8, stack=stack)
    arrays = _state_arrays(NET, params, best)
    info = {"opt_state[0].count": {"weak": True}, "key": {"key_impl": "threefry2x32"}}
    run = {"epoch": 3, "early_stopping": early_stopping, "leaf_info": info}
    path = checkpoint.save_state(tmp_path / "state-000000003.npz", NET, arrays, run, epoch=3)
    header, got = checkpoint.read_state(path)
    assert (header["version"], header["kind"], header["net"]) == (2, "tree_state", NET.to_json())
    assert header["run"] == {"epoch": 3, "early_stopping": early_stopping}
    entries = {leaf["name"]: leaf for leaf in header["leaves"]}
    assert entries["opt_state[0].count"]["weak"] and entries["key"]["key_impl"] == "threefry2x32"
    assert set(got) == set(arrays)
    for name, a in arrays.items():
        assert got[name].dtype == a.dtype and np.array_equal(bits(got[name]), bits(a))
    net, loaded, meta = fnn.load(path)
    assert net == NET and meta == {"epoch": 3}
    assert_bitwise(loaded, best if early_stopping else params)


def test_a_network_training_state_needs_its_parameters(tmp_path):
    arrays = _state_arrays(NET, filled(NET), filled(NET))
    del arrays["params[1]['state']['var']"]
    with pytest.raises(ValueError, match=r"`arrays` lacks the parameter leaves \[\"params\[1\]\['state'\]\['var'\]\"\]"):
        checkpoint.save_state(tmp_path / "s.npz", NET, arrays, {"epoch": 1})
    path = checkpoint.save(tmp_path / "p.npz", NET, filled(NET))
    with pytest.raises(CheckpointVersionError, match=r"a parameters checkpoint \(fnn.save, kind 'tree_params'\)"):
        checkpoint.read_state(path)
    model_arrays = dict(zip(checkpoint.param_names(MODEL), map(np.asarray, jax.tree_util.tree_leaves(filled(MODEL)))))
    path = checkpoint.save_state(tmp_path / "m.npz", MODEL, model_arrays, {"epoch": 1})
    assert checkpoint.read_state(path)[0]["kind"] == "tree_state"
    assert_bitwise(fnn.load(path, model=MODEL)[1], filled(MODEL))
    rewrite_header(path, lambda h: {**h, "leaves": h["leaves"][1:]})
    with pytest.raises(CheckpointError, match="parameter leaves .* of its tree are missing"):
        checkpoint.read_state(path)


# ---- the MLP format is unchanged ---------------------------------------------------------------------------
# Files written by fnn before networks of blocks existed (commit feff2be), zlib-compressed and base64-encoded:
# MLP((2, 3, 1), "tanh", "sigmoid") with the params below, epoch=3 and tags=["a"] (a parameters file), and
# a training state of it (save_state with the params as params/layer{l}/*, an int32 epoch, run {"epoch": 3}).
OLD_PARAMS = (
    "eNqtVc9rGkEUHrUpNM0hlR563A4EE9ikO+u6q6HorSVIixRKKUFkdMa4yboru6tgrSQHj57ai6fSP6D3ngKe+g8Uesmt9I/IrZ3ZH5Exe2irIzKz773v"
    "vff53G9q1cydfRCux+De/etfv6O1BR4CCw+pqzx5c2D3himwDWZRZLx/fPn6Re1tCgzAKEeo13Jzh1LuaVvLyVKu7bi+i+2G4xLK7c+w5VFm9zq4R9nz"
    "bl6W1D1ZGkv/vTZ5DztH2fLO0Yfy1+4V27MV+0qv1ARWe9ePviSwasasplHkdD2sVuMUsroAYH6eYgeRybfnl+QWE7SYz1qZIFnKrzyfeQWA7TkjdC4y"
    "mX76XklgcjOTSRQ5WQ+TdcykLDJ4cDmZxQyyjEGj0bbtRodi1kSjEfP4mQ7j4z2Rx/s++iseOlJWZLI5gqxKF/vwUIKs34NWh7bOeo5p+1CW4IC6nunY"
    "zMmGD23Kw0bQM99Rj52OVfaPkCVUZ76OSQjlgccjaOMu5fl8bHfgmHudvt/rh+DY6ZknXcckcMzcpm0GDeC+7wQGz8etM0qYze5bFjN0qY8J9nGQgvac"
    "VoedWG1W4yRoBWJY50iL4kHY3KJUrFqcUfDbcTdXG94a8YeBAbYtB/t5NQjyHTeofmNkqW/la4r5VkmGlprjr9pq+cTm0D8kq4dAtaBzM8IU5TVFVw2j"
    "aRRKRFeQUSxqVEctrWSoBUOhSgEjrORJScdGs1QkKtWophd1jIiC4bhWTaX3M+KdMovujC2wWBdc3oQbZhnJdXsaqZmI/LFANpOQXCeTkZ9TQFDNZSTX"
    "pUmkOyLyNA0ElVpGcj3gbzn/ZgWknAEJ6lCrbtzl/g322WVdvQqe/gANsdFs"
)
OLD_STATE = (
    "eNqtVT1P20AYvhAKhS4oMHR0LaEUKXz4gxhoRba2CLXKUlUVrayLfcYWydmyHaQ0jWBgzNQuTP0FVReGSpUqMfUPMKJu/RFs7Xv+AM44EiW5KLq79+O5"
    "5/Gd3re+XRxfRPF4hKYeXPz5m4xZNIc87ONWsNzEHeKvLL9Zol6ngGbQcZKQzp9fvX5Zf1tA+6hbNklg+OUNofzUUssVoWy5fuhjqru+SZj9GW4GBOyB"
    "jT0C+8dKRZAXKkJPuPOYZhzmt0qb81ufNr+3zmEu1eh5tVbnxC1cPPw6WFwjFddPEvqjETectFjcIUKnBwVY8IJ+Pf9pDhIkXd3WSAVJFUEZ+rZOawjN"
    "nIKuA15Q/8tZbbCgyxs6ShKORiNoFDe0yQvZ+XH2JBUyBUKI5xr2/9F3bkd/WPJAv3jjYbVP3t1P6ZeAvq5blOo2wUBC11MddjGOT+dcHR/b0q10aKo6"
    "5EVMd0U4pYVDcUMQge+SYRNjz3MdGooVQdwnfuC4FJwy7PYcarI4IOVQPQhxSFgQJSy7KwbOBxLAagdioT5J78FnO6ZJWP5OV6S4RaJ0TG2xx7xuO/Ta"
    "cXLqDJzdluuYYg/cDnUiXrgdupGhRUJs4hBHGdHzgJXCPH6b8kawEew3O0DT9TyH7oLRYt+PRTcJ3o+pXh2cqdpMWPSdWRSrtoyvGXYig2g1XRwqchQU"
    "uj4xrxvhhEGwDR52BJhShiorNSOB5alKd8SM7+M6EgcEzywLE5ui5wE58mqVGVdkSbXWNbJGiKKpBqwsmHEDV6uKBgtLVc11SyOrpIpNTTbwmrqiSgo2"
    "ZKJirWGIvfp2YWyxyDft46Qbz6Krccg6Rl4LzwKwxthPGgQP8PsGQCMPgDWifIBvBZTXlrIArPAfJSWRBzgYQ3ltIAvACm4KMMUBvIDqdFl+s2ms0LHy"
    "xf4lLm1yHOWUvfr2vQnmn4BfF6SdTLLdP4hkRoE="
)


def _old_mlp():
    params = [
        {"W": np.arange(6, dtype=np.float32).reshape(3, 2) / 7, "b": np.array([-0.0, np.nan, 1e-45], np.float32)},
        {"W": np.array([[1.5, -2.25, np.inf]], np.float32), "b": np.array([0.125], np.float32)},
    ]
    return fnn.MLP((2, 3, 1), hidden="tanh", output="sigmoid"), params


def _entries(data: bytes) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


@pytest.mark.parametrize("which", ["params", "state"])
def test_old_mlp_files_load_and_new_ones_are_the_same_bytes(tmp_path, which):
    old = zlib.decompress(base64.b64decode(OLD_PARAMS if which == "params" else OLD_STATE))
    path = tmp_path / "old.npz"
    path.write_bytes(old)
    net, params = _old_mlp()
    got_net, got, meta = fnn.load(path)
    assert got_net == net and meta == ({"epoch": 3, "tags": ["a"]} if which == "params" else {"epoch": 3})
    assert_bitwise(got, [{k: jnp.asarray(v) for k, v in layer.items()} for layer in params])
    if which == "params":
        new = checkpoint.save(tmp_path / "new.npz", net, params, epoch=3, tags=["a"])
    else:
        arrays = {f"params/layer{l}/{k}": v for l, layer in enumerate(params) for k, v in layer.items()}
        arrays["epoch"] = np.int32(3)
        new = checkpoint.save_state(tmp_path / "new.npz", net, arrays, {"epoch": 3, "early_stopping": False}, epoch=3)
        assert checkpoint.read_state(path)[0] == checkpoint.read_state(new)[0]
    assert _entries(new.read_bytes()) == _entries(old)  # every entry, the header's JSON included, byte for byte
