"""Checkpoints: bit-exact round trips, atomic replace (also under SIGKILL), corruption detection, no pickle."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fnn.checkpoint import CheckpointError

import fnn
from fnn import checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NET = fnn.MLP((3, 5, 2), hidden="tanh", output="softmax")


def make_params(net, dtype=np.float32, seed=0, stack=None):
    """Random params built in numpy (no jax compile per shape or dtype); leaves (stack, ...) if stacked."""
    rng, lead = np.random.default_rng(seed), () if stack is None else (stack,)
    return [{k: jnp.asarray(rng.normal(size=lead + s).astype(dtype)) for k, s in layer.items()} for layer in net.shapes]


def bits(a) -> np.ndarray:
    """The raw bits of an array as unsigned ints of the same width (so NaN == NaN, -0 != +0)."""
    a = np.asarray(a)
    return a.view(f"u{a.dtype.itemsize}")


def assert_same_params(got, want):
    assert isinstance(got, list) and len(got) == len(want)
    for g, w in zip(got, want):
        assert set(g) == {"W", "b"}
        for k in ("W", "b"):
            assert isinstance(g[k], jax.Array)
            assert g[k].dtype == w[k].dtype and g[k].shape == w[k].shape
            np.testing.assert_array_equal(bits(g[k]), bits(w[k]))


def read_header(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return json.loads(f[checkpoint.HEADER_KEY].tobytes().decode())


def rewrite(path, change):
    """Rebuild the zip with ``change(name, bytes) -> bytes`` applied to each entry (fresh, valid CRCs)."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(path, "w") as z:
        for n, data in entries.items():
            z.writestr(n, change(n, data))


def npy_bytes(a, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def temp_files(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(checkpoint.TEMP_SUFFIX))


@pytest.fixture
def saved(tmp_path):
    params = NET.init(jax.random.key(0))
    path = checkpoint.save(tmp_path / "net.npz", NET, params, epoch=1)
    return path, params


# ---- round trips ----------------------------------------------------------------------------------
def test_round_trip_float32_is_bit_exact_with_special_values(tmp_path):
    params = NET.init(jax.random.key(0))
    special = jnp.array([np.nan, -0.0, np.inf, -np.inf, 1e-45], jnp.float32)  # NaN, -0, ±inf, subnormal
    params[0]["b"] = special
    path = checkpoint.save(str(tmp_path / "f32.npz"), NET, params)
    net, loaded, meta = checkpoint.load(path)
    assert net == NET and meta == {}
    assert_same_params(loaded, params)
    assert bits(loaded[0]["b"]).tolist() == bits(special).tolist()


def test_round_trip_float64_is_bit_exact(tmp_path, x64):
    params = make_params(NET, np.float64, seed=1)
    params[1]["b"] = jnp.array([np.pi, np.nextafter(1.0, 2.0)], jnp.float64)  # needs all 53 bits
    net, loaded, _ = checkpoint.load(checkpoint.save(tmp_path / "f64.npz", NET, params))
    assert net == NET
    assert_same_params(loaded, params)
    assert loaded[1]["b"].dtype == jnp.float64


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_round_trip_half_precision(tmp_path, dtype):
    params = make_params(NET, dtype, seed=2)
    path = checkpoint.save(tmp_path / "half.npz", NET, params)
    _, loaded, _ = checkpoint.load(path)
    assert_same_params(loaded, params)
    leaf = read_header(path)["leaves"][0]
    assert leaf["dtype"] == jnp.dtype(dtype).name
    assert leaf["stored"] == ("float16" if dtype == jnp.float16 else "uint16")  # bfloat16 as raw bits


def test_spec_metadata_and_header_round_trip(tmp_path):
    net = fnn.MLP((3, 5, 4, 2), hidden=(fnn.activations.get("leaky_relu", slope=0.2), "tanh"), output="softmax", init="he")
    meta = {
        "epoch": 7,
        "lr": np.float32(0.1),
        "curve": jnp.arange(3.0),
        "tags": ("a", "b"),
        "cfg": {"seed": np.int64(3), "nested": [None, True, 2.5]},
    }
    path = checkpoint.save(tmp_path / "spec.npz", net, make_params(net), **meta)
    net2, _, meta2 = checkpoint.load(path)
    assert net2 == net and net2.hidden[0].params == (("slope", 0.2),) and net2.init_name == "he"
    assert meta2 == {
        "epoch": 7,
        "lr": float(np.float32(0.1)),
        "curve": [0.0, 1.0, 2.0],
        "tags": ["a", "b"],  # tuples come back as lists
        "cfg": {"seed": 3, "nested": [None, True, 2.5]},
    }
    header = read_header(path)
    assert header["format"] == "fnn.checkpoint" and header["version"] == 1 and header["stacked"] is None
    assert header["net"] == net.to_json()
    assert [leaf["name"] for leaf in header["leaves"]] == [f"layer{l}/{k}" for l in range(3) for k in "Wb"]
    assert header["leaves"][0]["shape"] == [5, 3] and header["leaves"][0]["dtype"] == "float32"
    assert re.fullmatch(r"[0-9a-f]{64}", header["sha256"])


def test_stacked_params_round_trip(tmp_path):
    params = make_params(NET, seed=4, stack=3)  # what jax.vmap(net.init) over 3 keys gives
    assert params[0]["W"].shape == (3, 5, 3)
    path = checkpoint.save(tmp_path / "ens.npz", NET, params, members=3)
    net, loaded, meta = checkpoint.load(path)
    assert net == NET and meta == {"members": 3}
    assert_same_params(loaded, params)
    assert read_header(path)["stacked"] == 3


def test_stacked_params_with_unequal_leading_sizes_are_refused(tmp_path):
    params = make_params(NET, seed=4, stack=3)
    params[1]["b"] = params[1]["b"][:2]
    with pytest.raises(ValueError, match="leading sizes differ"):
        checkpoint.save(tmp_path / "bad.npz", NET, params)
    assert not list(tmp_path.iterdir())


def test_path_is_used_exactly_as_given(tmp_path):
    out = checkpoint.save(str(tmp_path / "weights.bin"), NET, NET.init(jax.random.key(0)))
    assert out == tmp_path / "weights.bin"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]
    assert checkpoint.load(out)[0] == NET


# ---- overwrite and atomicity ----------------------------------------------------------------------
def test_overwrite_keeps_only_the_new_content(tmp_path, saved):
    path, _ = saved
    net_b = fnn.MLP((2, 3, 3, 1), hidden="relu")
    params_b = make_params(net_b, seed=5)
    checkpoint.save(path, net_b, params_b, run="b")
    net, loaded, meta = checkpoint.load(path)
    assert net == net_b and meta == {"run": "b"}
    assert_same_params(loaded, params_b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]


def _fail_replace(*args, **kwargs):
    raise OSError("disk on fire")


def _fail_mid_write(f, *args, **kwargs):
    f.write(b"PK\x03\x04 half a zip")
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["os.replace", "np.savez"])
def test_interrupted_save_leaves_previous_checkpoint(tmp_path, saved, monkeypatch, where):
    path, params = saved
    before = path.read_bytes()
    if where == "os.replace":
        monkeypatch.setattr(os, "replace", _fail_replace)
        error = OSError
    else:
        monkeypatch.setattr(np, "savez", _fail_mid_write)
        error = KeyboardInterrupt
    with pytest.raises(error):
        checkpoint.save(path, NET, NET.init(jax.random.key(9)), epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    _, loaded, meta = checkpoint.load(path)
    assert meta == {"epoch": 1}
    assert_same_params(loaded, params)
    assert temp_files(tmp_path) == []


# A writer that saves version `start` in full, then saves `start + 1` and stops inside that save at `point`:
# it announces the point and waits there to be killed (an EOF on stdin: the parent is gone, it exits). The
# points, in the order of checkpoint._write_atomic: "open" (the temporary file created, nothing in it),
# "write" (the first leaf's bytes written, the rest of the zip not) and "rename" (the temporary file complete
# and fsync-ed, os.replace not yet called).
_WRITER = r"""
import os, sys
import numpy as np
import fnn
from fnn import checkpoint
path, start, point = sys.argv[1], int(sys.argv[2]), sys.argv[3]
armed = False

def stop(where):
    if armed and where == point:
        print("at", where, flush=True)
        sys.stdin.read()
        os._exit(3)

class Cut:  # the temporary file, stopped at once after a write takes it past 4 KiB
    def __init__(self, f):
        self.f, self.n = f, 0
    def __getattr__(self, name):
        return getattr(self.f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.f.__exit__(*exc)
    def write(self, b):
        n = self.f.write(b)
        self.n += n
        if self.n > 4096:
            self.f.flush()
            stop("write")
        return n

_fdopen, _replace = os.fdopen, os.replace
def fdopen(fd, *args, **kwargs):
    stop("open")
    return Cut(_fdopen(fd, *args, **kwargs))
def replace(src, dst):
    stop("rename")
    return _replace(src, dst)
os.fdopen, os.replace = fdopen, replace

net = fnn.MLP((32, 64, 1), hidden="relu")  # its first leaf, W (64, 32) float32, is 8 KiB
for v in (start, start + 1):
    params = [{"W": np.full(s["W"], v, np.float32), "b": np.full(s["b"], v, np.float32)} for s in net.shapes]
    checkpoint.save(path, net, params, version=v)
    print(v, flush=True)
    armed = True
"""


def test_killed_writer_never_leaves_a_broken_checkpoint(tmp_path):
    """SIGKILL lands inside a save at each of its steps (the writer waits there to be killed): the target
    is the last complete save, exactly; each killed save leaves its temporary file, which a later save
    removes once it is stale."""
    path = tmp_path / "big.npz"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    pids = []
    for round_, point in enumerate(("open", "write", "rename")):
        start = 1000 * (round_ + 1)
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(start), point],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        pids.append(proc.pid)
        try:
            first = proc.stdout.readline()  # one complete save by this writer; the next is under way
            assert first.strip() == str(start).encode(), proc.stderr.read().decode()[-2000:]
            assert proc.stdout.readline().split() == [b"at", point.encode()]  # the kill lands there
        finally:
            proc.send_signal(signal.SIGKILL)
            rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL and rest == b""
        net, params, meta = checkpoint.load(path)
        assert meta == {"version": start}  # the last completed save, not the killed one
        assert net.sizes == (32, 64, 1)
        for layer in params:
            for leaf in layer.values():
                assert (np.asarray(leaf) == start).all(), start
        # only the target and temp files of the killed writers, named so they can be found
        others = sorted(p.name for p in tmp_path.iterdir() if p != path)
        for name in others:
            m = re.fullmatch(r"\.big\.npz\.(\d+)\.[0-9a-f]+\.fnn-tmp", name)
            assert m and int(m.group(1)) in pids, name
        # this writer's: one temporary file, as far as its save got
        mine = [p for p in tmp_path.iterdir() if p.name.startswith(f".big.npz.{proc.pid}.")]
        assert len(mine) == 1, others
        tmp = mine[0]
        size = tmp.stat().st_size
        if point == "open":
            assert size == 0
        elif point == "write":
            assert 4096 < size < path.stat().st_size
            with pytest.raises(CheckpointError):
                checkpoint.load(tmp)
        else:  # complete: the new version, never renamed onto the target
            assert size == path.stat().st_size and checkpoint.load(tmp)[2] == {"version": start + 1}
    # a later save removes leftovers untouched for STALE_AFTER_S, and only those
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert sorted(int(p.name.split(".")[3]) for p in leftovers) == sorted(pids)  # one per killed save
    fresh = tmp_path / f".big.npz.{os.getpid()}.abc.fnn-tmp"
    fresh.write_bytes(b"")
    for p in leftovers:
        old = time.time() - checkpoint.STALE_AFTER_S - 60
        os.utime(p, (old, old))
    checkpoint.save(path, NET, NET.init(jax.random.key(0)))
    assert temp_files(tmp_path) == [fresh.name]


# ---- damaged and foreign files --------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_a_checkpoint_error(saved, keep):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        checkpoint.load(path)


def test_bit_flip_in_leaf_data_is_detected(tmp_path):
    net = fnn.MLP((64, 64, 2))
    params = make_params(net, seed=6)
    path = checkpoint.save(tmp_path / "flip.npz", net, params)
    data = bytearray(path.read_bytes())
    W = np.asarray(params[0]["W"]).tobytes()
    at = data.find(W[:64])
    assert at > 0
    data[at + len(W) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC|SHA-256"):
        checkpoint.load(path)


def test_checksum_catches_a_rewrite_with_valid_crc(saved):
    path, _ = saved

    def flip_last_byte(name, data):
        return data[:-1] + bytes([data[-1] ^ 1]) if name == "layer1/W.npy" else data

    rewrite(path, flip_last_byte)
    with pytest.raises(CheckpointError, match="SHA-256 .* does not match"):
        checkpoint.load(path)


def test_foreign_npz_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, W=np.ones((3, 2)))
    with pytest.raises(CheckpointError, match="no '__fnn_header__' entry"):
        checkpoint.load(path)


@pytest.mark.parametrize("content", [b"hello, not a zip\n", npy_bytes(np.ones(3))], ids=["text", "npy"])
def test_non_zip_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        checkpoint.load(path)


def test_unknown_format_version_is_a_checkpoint_error(saved):
    path, _ = saved

    def bump(name, data):
        if name != checkpoint.HEADER_KEY + ".npy":
            return data
        header = json.loads(np.load(io.BytesIO(data)).tobytes())
        return npy_bytes(np.frombuffer(json.dumps({**header, "version": 99}).encode(), np.uint8))

    rewrite(path, bump)
    with pytest.raises(CheckpointError, match="format version 99"):
        checkpoint.load(path)


@pytest.mark.parametrize("bit", [0x20, 0x01], ids=["patched data", "encrypted"])
@pytest.mark.parametrize("reader", ["load", "read_state"])
def test_damaged_zip_flags_are_a_checkpoint_error(tmp_path, bit, reader):
    """A flag bit of the first central-directory entry set: zipfile raises NotImplementedError
    ('compressed patched data') or RuntimeError ('File is encrypted'), both a damaged file."""
    path = checkpoint.save(tmp_path / "a.npz", NET, make_params(NET))
    if reader == "read_state":
        arrays = {f"params/layer{l}/{k}": np.asarray(v) for l, layer in enumerate(make_params(NET)) for k, v in layer.items()}
        path = checkpoint.save_state(tmp_path / "s.npz", NET, arrays, {"epoch": 1})
    raw = bytearray(path.read_bytes())
    raw[raw.find(b"PK\x01\x02") + 8] |= bit
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="NotImplementedError|RuntimeError"):
        getattr(checkpoint, reader)(path)


@pytest.mark.parametrize(
    "path, err, match",
    [
        (5, TypeError, "`path` must be a path \\(str or os.PathLike\\), got int"),
        (None, TypeError, "`path` must be a path \\(str or os.PathLike\\), got NoneType"),
        (b"a.npz", TypeError, "`path` must be a path \\(str or os.PathLike\\), got bytes"),
        ("", ValueError, "`path` must be a non-empty path"),
        ("a\0b.npz", ValueError, "`path` must not contain a NUL character"),
    ],
    ids=["int", "None", "bytes", "empty", "NUL"],
)
@pytest.mark.parametrize("fn", ["save", "load", "save_state", "read_state"])
def test_a_bad_path_is_refused_by_name(path, err, match, fn):
    args = {
        "save": (NET, make_params(NET)),
        "load": (),
        "save_state": (NET, {}, {}),
        "read_state": (),
    }[fn]
    with pytest.raises(err, match=match):
        getattr(checkpoint, fn)(path, *args)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        checkpoint.load(tmp_path / "nope.npz")


def test_float64_checkpoint_needs_x64(tmp_path, x64):
    path = checkpoint.save(tmp_path / "f64.npz", NET, make_params(NET, np.float64))
    jax.config.update("jax_enable_x64", False)  # the fixture restores it
    with pytest.raises(ValueError, match="jax_enable_x64"):
        checkpoint.load(path)


# ---- no pickle ------------------------------------------------------------------------------------
UNPICKLED = []


class _Trap:
    def __reduce__(self):
        return (UNPICKLED.append, ("code ran",))


def test_load_never_allows_pickle(saved, monkeypatch):
    path, _ = saved
    calls, real_load = [], np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle", "default"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    checkpoint.load(path)
    assert calls == [False]


def test_object_array_is_refused_without_running_code(saved):
    path, _ = saved
    trap = np.empty(2, dtype=object)
    trap[:] = [_Trap(), _Trap()]

    def poison(name, data):
        return npy_bytes(trap, allow_pickle=True) if name == "layer0/b.npy" else data

    rewrite(path, poison)
    with pytest.raises(CheckpointError, match="allow_pickle"):
        checkpoint.load(path)
    assert UNPICKLED == []


# ---- bad arguments to save ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "meta, key",
    [
        ({"run": object()}, r"metadata\['run'\]"),
        ({"cfg": {"opt": len}}, r"metadata\['cfg'\]\['opt'\]"),
        ({"big": np.zeros(5000)}, r"metadata\['big'\] is an array of shape \(5000,\)"),
        ({"ids": {1: "a"}}, r"metadata\['ids'\] has non-str keys"),
    ],
)
def test_metadata_must_be_json(tmp_path, meta, key):
    with pytest.raises(TypeError, match=key):
        checkpoint.save(tmp_path / "m.npz", NET, NET.init(jax.random.key(0)), **meta)
    assert not list(tmp_path.iterdir())


def test_params_from_a_different_network_are_refused(tmp_path):
    other = make_params(fnn.MLP((3, 6, 2)))
    with pytest.raises(ValueError, match="different network"):
        checkpoint.save(tmp_path / "x.npz", NET, other)
    with pytest.raises(TypeError, match="`net` must be an fnn.MLP"):
        checkpoint.save(tmp_path / "x.npz", NET.to_json(), other)
    assert not list(tmp_path.iterdir())


def test_missing_directory_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "no_such_dir"))):
        checkpoint.save(tmp_path / "no_such_dir" / "net.npz", NET, NET.init(jax.random.key(0)))
