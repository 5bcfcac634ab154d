"""Data sets: the toy generators' shapes, balance, determinism and geometry; the MNIST reader on tiny
IDX files written here; MNIST-1D and digits without downloads; the split and scaling helpers; and
each bad input's message. Small fixed sizes (31 points) so every primitive compiles once."""

import gzip
import random
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import datasets as D

KEY = jax.random.key(0)
N = 31  # not a multiple of 2 or 3: balance must hold with a remainder

# name -> (generator(key, n, noise), number of classes)
GENERATORS = {
    "xor": (lambda key, n, noise=0.1: D.xor(key, n, noise), 2),
    "circles": (lambda key, n, noise=0.1: D.circles(key, n, noise), 2),
    "moons": (lambda key, n, noise=0.1: D.moons(key, n, noise), 2),
    "spirals": (lambda key, n, noise=0.2: D.spirals(key, n, noise), 3),
    "blobs": (lambda key, n, noise=1.0: D.blobs(key, n, noise=noise), 3),
}


# ---- toy generators ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GENERATORS)
def test_shapes_dtypes_and_balance(name):
    gen, k = GENERATORS[name]
    x, y = gen(KEY, N)
    assert x.shape == (N, 2) and x.dtype == jnp.float32
    assert y.shape == (N,) and y.dtype == jnp.int32
    counts = np.bincount(np.asarray(y), minlength=k)
    assert len(counts) == k and set(counts.tolist()) <= {N // k, N // k + 1}, counts
    assert bool(jnp.all(jnp.isfinite(x)))
    assert not np.array_equal(y, np.arange(N) % k) and np.any(np.diff(np.asarray(y)) < 0), "rows should come shuffled"


@pytest.mark.parametrize("name", GENERATORS)
def test_deterministic_per_key(name):
    gen, _ = GENERATORS[name]
    x1, y1 = gen(KEY, N)
    x2, y2 = gen(jax.random.key(0), N)
    x3, _ = gen(jax.random.key(1), N)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


@pytest.mark.parametrize("name", GENERATORS)
def test_float64_under_x64(x64, name):
    x, y = GENERATORS[name][0](KEY, N)
    assert x.dtype == jnp.float64 and y.dtype == jnp.int32


def test_jit_vmap_and_legacy_keys():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)  # legacy uint32 keys, shape (3, 2)
    xs, ys = jax.jit(jax.vmap(lambda k: D.moons(k, N)))(keys)
    assert xs.shape == (3, N, 2) and ys.shape == (3, N)
    x1, y1 = D.moons(jax.random.wrap_key_data(keys[1]), N)  # the same key, typed
    np.testing.assert_allclose(xs[1], x1, atol=1e-6)
    np.testing.assert_array_equal(ys[1], y1)


def test_xor_exact_truth_table():
    for x, y in (D.xor(), D.xor(KEY), D.xor(None, 4, 0.0)):
        np.testing.assert_array_equal(x, [[0, 0], [0, 1], [1, 0], [1, 1]])
        np.testing.assert_array_equal(y, [0, 1, 1, 0])
        assert x.dtype == jnp.float32 and y.dtype == jnp.int32


def test_xor_sampled_corners_carry_xor_labels():
    x, y = D.xor(KEY, N, noise=0.0)
    x, y = np.asarray(x), np.asarray(y)
    assert set(np.unique(x).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(y, np.logical_xor(x[:, 0], x[:, 1]))
    corners = np.unique(x, axis=0, return_counts=True)[1]
    assert len(corners) == 4 and corners.max() - corners.min() <= 1  # corners used in turn
    xn, _ = D.xor(KEY, N, noise=0.1)
    assert np.max(np.abs(np.asarray(xn) - np.round(np.asarray(xn)))) > 0  # noise was added
    assert np.max(np.abs(np.asarray(xn) - np.round(np.asarray(xn)))) < 0.5


def test_circles_radii_at_zero_noise():
    x, y = D.circles(KEY, N, noise=0.0, factor=0.3)
    r = np.linalg.norm(np.asarray(x), axis=1)
    np.testing.assert_allclose(r[np.asarray(y) == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(r[np.asarray(y) == 1], 0.3, rtol=1e-6)
    xn, yn = D.circles(KEY, N, noise=0.1, factor=0.3)
    rn = np.linalg.norm(np.asarray(xn), axis=1)
    assert rn[np.asarray(yn) == 0].mean() > 0.8 and rn[np.asarray(yn) == 1].mean() < 0.5


def test_moons_lie_on_their_half_circles_at_zero_noise():
    x, y = D.moons(KEY, N, noise=0.0)
    x, y = np.asarray(x), np.asarray(y)
    up, low = x[y == 0], x[y == 1]
    np.testing.assert_allclose(np.hypot(up[:, 0], up[:, 1]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.hypot(low[:, 0] - 1.0, low[:, 1] - 0.5), 1.0, rtol=1e-6)
    assert up[:, 1].min() >= -1e-6 and low[:, 1].max() <= 0.5 + 1e-6


def test_spirals_follow_their_arm_at_zero_noise():
    x, y = D.spirals(KEY, N, noise=0.0, classes=3)
    x, y = np.asarray(x, np.float64), np.asarray(y)
    r = np.hypot(x[:, 0], x[:, 1])
    assert r.max() <= 1.0 + 1e-6
    t = np.arctan2(x[:, 0], x[:, 1])  # x = r (sin t, cos t)
    wrapped = np.angle(np.exp(1j * (t - 4.0 * (y + r))))
    keep = r > 1e-3  # the angle of a point at the origin is undefined
    np.testing.assert_allclose(wrapped[keep], 0.0, atol=1e-4)


def test_blobs_given_centers():
    centers = [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 5.0]]
    x, y = D.blobs(KEY, N, noise=0.0, centers=centers)
    assert x.shape == (N, 3)
    np.testing.assert_array_equal(x, np.asarray(centers, np.float32)[np.asarray(y)])
    x2, y2 = D.blobs(KEY, N, classes=3, noise=0.5, centers=np.asarray(centers))  # classes may be repeated
    np.testing.assert_array_equal(y2, y)
    assert 0 < np.abs(np.asarray(x2 - x)).max() < 5


def test_blobs_default_centers_in_box():
    x, y = D.blobs(KEY, N, classes=3, noise=0.0)
    x, y = np.asarray(x), np.asarray(y)
    assert np.abs(x).max() <= 10.0
    for c in range(3):  # zero noise: each class sits at one centre
        assert len(np.unique(x[y == c], axis=0)) == 1


# ---- the local MNIST reader --------------------------------------------------------------------
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx(magic, a):
    a = np.asarray(a, np.uint8)
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in a.shape) + a.tobytes()


def _arrays():
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 256, (5, 2, 3), dtype=np.uint8),
        rng.integers(0, 10, 5, dtype=np.uint8),
        rng.integers(0, 256, (3, 2, 3), dtype=np.uint8),
        rng.integers(0, 10, 3, dtype=np.uint8),
    )


def _write_mnist(folder, gz=False, arrays=None):
    arrays = _arrays() if arrays is None else arrays
    folder.mkdir(exist_ok=True)
    for name, a in zip(NAMES, arrays):
        data = _idx(0x803 if a.ndim == 3 else 0x801, a)
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(data)
        else:
            (folder / name).write_bytes(data)
    return arrays


def _check_loaded(out, arrays):
    x, y, xt, yt = out
    assert x.shape == (5, 6) and xt.shape == (3, 6)
    assert x.dtype == jnp.float32 and y.dtype == jnp.int32 and yt.dtype == jnp.int32
    np.testing.assert_allclose(x, arrays[0].reshape(5, 6) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(xt, arrays[2].reshape(3, 6) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, arrays[1])
    np.testing.assert_array_equal(yt, arrays[3])
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_mnist_reads_idx_files(tmp_path, gz):
    arrays = _write_mnist(tmp_path / "mnist", gz=gz)
    _check_loaded(D.mnist(tmp_path / "mnist"), arrays)
    _check_loaded(D.mnist(str(tmp_path / "mnist")), arrays)


def test_mnist_reads_npz_file_and_folder(tmp_path):
    arrays = _arrays()
    np.savez(tmp_path / "mnist.npz", **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays)))
    _check_loaded(D.mnist(tmp_path / "mnist.npz"), arrays)
    _check_loaded(D.mnist(tmp_path), arrays)  # a folder with only mnist.npz in it


def test_mnist_npz_refuses_pickles_and_names_missing_keys(tmp_path):
    a = _arrays()
    np.savez(tmp_path / "obj.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=a[1], x_test=a[2], y_test=a[3])
    with pytest.raises(ValueError, match="allow_pickle"):
        D.mnist(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: not an .npz archive"):
        D.mnist(tmp_path / "junk.npz")
    np.savez(tmp_path / "part.npz", x_train=a[0], y_train=a[1])
    with pytest.raises(ValueError, match=r"missing arrays \['x_test', 'y_test'\]"):
        D.mnist(tmp_path / "part.npz")


def test_mnist_missing_folder(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"does not exist; expected a folder holding the MNIST IDX files \(train-images-idx3-ubyte\[\.gz\]",
    ):
        D.mnist(tmp_path / "nowhere")


def test_mnist_missing_file(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / NAMES[3]).unlink()
    msg = (
        rf"MNIST files missing in folder {re.escape(repr(str(tmp_path)))}: "
        r"t10k-labels-idx1-ubyte\[\.gz\]; it needs all four IDX files"
    )
    with pytest.raises(FileNotFoundError, match=msg):
        D.mnist(tmp_path)


def test_mnist_wrong_magic(tmp_path):
    arrays = _write_mnist(tmp_path)
    (tmp_path / NAMES[1]).write_bytes(_idx(0x803, arrays[1]))  # labels written with the images magic
    with pytest.raises(
        ValueError,
        match=r"train-labels-idx1-ubyte: wrong IDX magic number, expected 0x00000801 \(2049\), found 0x00000803 \(2051\)",
    ):
        D.mnist(tmp_path)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_mnist_truncated_data(tmp_path, gz):
    arrays = _write_mnist(tmp_path)
    data = _idx(0x803, arrays[2])[:-2]
    if gz:
        (tmp_path / NAMES[2]).unlink()
        with gzip.open(tmp_path / f"{NAMES[2]}.gz", "wb") as f:
            f.write(data)
    else:
        (tmp_path / NAMES[2]).write_bytes(data)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte(\.gz)?: truncated data, .*expected 18 bytes of data, found 16"):
        D.mnist(tmp_path)


def test_mnist_corrupt_gzip_and_short_header(tmp_path):
    arrays = _write_mnist(tmp_path, gz=True)
    raw = (tmp_path / f"{NAMES[0]}.gz").read_bytes()
    (tmp_path / f"{NAMES[0]}.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip data"):
        D.mnist(tmp_path)
    _write_mnist(tmp_path / "plain", arrays=arrays)
    (tmp_path / "plain" / NAMES[0]).write_bytes((0x803).to_bytes(4, "big") + b"\x00\x00")
    with pytest.raises(ValueError, match="truncated IDX header, expected 16 bytes, the file holds 6"):
        D.mnist(tmp_path / "plain")


def test_mnist_count_mismatch(tmp_path):
    arrays = list(_arrays())
    arrays[1] = arrays[1][:4]  # 5 train images, 4 labels
    _write_mnist(tmp_path, arrays=arrays)
    with pytest.raises(
        ValueError, match=r"image and label counts disagree: .*train-images.* \(5, 2, 3\).*labels of shape \(4,\)"
    ):
        D.mnist(tmp_path)


def test_mnist_path_type():
    with pytest.raises(TypeError, match="`path` must be a folder or an .npz file path"):
        D.mnist(123)


# ---- MNIST-1D and digits, no download -----------------------------------------------------------
@pytest.fixture(scope="module")
def mnist1d_run():
    np.random.seed(1234)
    random.seed(99)
    before = (np.random.get_state(), random.getstate())
    data = D.mnist1d()
    return data, before, (np.random.get_state(), random.getstate())


def test_mnist1d_default_shapes(mnist1d_run):
    (x, y, xt, yt), _, _ = mnist1d_run
    assert x.shape == (4000, 40) and xt.shape == (1000, 40)
    assert y.shape == (4000,) and yt.shape == (1000,)
    assert x.dtype == jnp.float32 and y.dtype == jnp.int32
    assert sorted(set(np.asarray(y).tolist())) == list(range(10))
    assert sorted(set(np.asarray(yt).tolist())) == list(range(10))
    assert abs(float(jnp.concatenate([x, xt]).std()) - 1.0) < 1e-3  # standardised as a whole


def test_mnist1d_restores_global_rngs(mnist1d_run):
    _, (np_before, py_before), (np_after, py_after) = mnist1d_run
    assert np_before[0] == np_after[0] and np_before[2:] == np_after[2:]
    np.testing.assert_array_equal(np_before[1], np_after[1])
    assert py_before == py_after


def test_mnist1d_seeded_and_sized():
    a = D.mnist1d(seed=1, num_samples=100)
    b = D.mnist1d(seed=1, num_samples=100)
    c = D.mnist1d(seed=2, num_samples=100)
    assert a[0].shape == (80, 40) and a[2].shape == (20, 40)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_digits():
    x, y = D.digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.dtype == jnp.float32 and y.dtype == jnp.int32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert sorted(set(np.asarray(y).tolist())) == list(range(10))


@pytest.mark.parametrize(
    "module, call, extra",
    [("sklearn.datasets", D.digits, "scikit-learn"), ("mnist1d.data", D.mnist1d, "mnist1d")],
)
def test_missing_optional_dependency(monkeypatch, module, call, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ImportError, match=rf'needs .*{extra}.*pip install "fnn\[experiments\]"'):
        call()


# ---- helpers -------------------------------------------------------------------------------------
def _indexed(n=50):
    x = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)  # row i is (i, -i)
    y = (np.arange(n) % 5 == 0).astype(np.int32)  # 10 of class 1, 40 of class 0
    return x, y


def test_split_partitions_and_keeps_pairs():
    x, y = _indexed()
    x_tr, y_tr, x_te, y_te = D.train_test_split(KEY, jnp.asarray(x), jnp.asarray(y), 0.2)
    assert x_tr.shape == (40, 2) and x_te.shape == (10, 2) and y_te.shape == (10,)
    rows = np.concatenate([x_tr[:, 0], x_te[:, 0]]).astype(int)
    assert sorted(rows.tolist()) == list(range(50))  # every row once
    assert rows.tolist() != list(range(50))  # shuffled
    np.testing.assert_array_equal(np.concatenate([y_tr, y_te]), y[rows])  # labels follow their rows
    again = D.train_test_split(jax.random.key(0), x, y, 0.2)
    other = D.train_test_split(jax.random.key(1), x, y, 0.2)
    np.testing.assert_array_equal(again[2], x_te)
    assert not np.array_equal(other[2], x_te)
    assert isinstance(again[0], np.ndarray)  # numpy in, numpy out


def test_split_sizes_round_sensibly():
    x, y = _indexed()
    assert D.train_test_split(KEY, x, y, 0.14)[2].shape == (7, 2)  # 0.14·50 = 7.000000000000001, not 8
    assert D.train_test_split(KEY, x, y, 0.333)[2].shape == (17, 2)  # ceil(16.65)


@pytest.mark.parametrize("onehot", [False, True])
def test_split_stratified_keeps_proportions(onehot):
    x, y = _indexed()
    labels = np.eye(2, dtype=np.float32)[y] if onehot else y
    for seed in range(3):
        _, y_tr, _, y_te = D.train_test_split(jax.random.key(seed), x, labels, 0.2, stratify=True)
        y_tr = np.argmax(y_tr, -1) if onehot else y_tr
        y_te = np.argmax(y_te, -1) if onehot else y_te
        assert np.bincount(y_te).tolist() == [8, 2] and np.bincount(y_tr).tolist() == [32, 8]


def test_standardize_fits_on_train_only():
    rng = np.random.default_rng(0)
    x_tr = rng.normal(3.0, 2.0, (40, 3)).astype(np.float32)
    x_tr[:, 2] = 7.0  # a constant feature
    x_te = rng.normal(0.0, 1.0, (10, 3)).astype(np.float32)
    s_tr, s_te, mean, std = D.standardize(x_tr, x_te)
    np.testing.assert_allclose(np.mean(s_tr[:, :2], 0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.std(s_tr[:, :2], 0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(mean, x_tr.mean(0), rtol=1e-5)
    np.testing.assert_allclose(s_te[:, :2], (x_te[:, :2] - x_tr.mean(0)[:2]) / x_tr.std(0)[:2], rtol=1e-4)
    assert bool(jnp.all(jnp.isfinite(s_te))) and float(std[2]) > 0
    np.testing.assert_array_equal(s_tr[:, 2], 0.0)
    np.testing.assert_allclose(s_te * std + mean, x_te, rtol=1e-5, atol=1e-5)  # invertible
    # the constant feature is centred only, as scikit-learn's StandardScaler does (dividing the test rows by the
    # floor eps would send a test value of 0 to about -7e8)
    np.testing.assert_allclose(s_te[:, 2], x_te[:, 2] - 7.0, rtol=1e-6)
    from sklearn.preprocessing import StandardScaler

    np.testing.assert_allclose(s_te, StandardScaler().fit(x_tr).transform(x_te), rtol=1e-4, atol=1e-5)


def test_standardize_integer_input_gives_floats():
    (s, mean, std) = D.standardize(np.array([[0], [255]], np.uint8))
    assert s.dtype == jnp.float32
    np.testing.assert_allclose(s[:, 0], [-1.0, 1.0])
    assert mean.shape == (1,) and std.shape == (1,)


def test_one_hot():
    y = jnp.array([2, 0, 1, 2])
    h = D.one_hot(y, 3)
    assert h.shape == (4, 3) and h.dtype == jnp.float32
    np.testing.assert_array_equal(h, np.eye(3)[[2, 0, 1, 2]])
    np.testing.assert_array_equal(jnp.argmax(h, -1), y)


# ---- bad input -----------------------------------------------------------------------------------
_X = np.zeros((4, 2), np.float32)
_Y = np.zeros(4, np.int32)

BAD = [
    ("n zero", lambda: D.moons(KEY, 0), ValueError, r"`n` must be an int >= 1, got 0"),
    ("n negative", lambda: D.circles(KEY, -5), ValueError, r"`n` must be an int >= 1, got -5"),
    ("n float", lambda: D.spirals(KEY, 2.5), TypeError, r"`n` must be an int >= 1, got float 2.5"),
    ("n bool", lambda: D.blobs(KEY, True), TypeError, r"`n` must be an int >= 1, got bool"),
    ("xor n zero", lambda: D.xor(KEY, 0), ValueError, r"`n` must be an int >= 1, got 0"),
    ("noise negative", lambda: D.moons(KEY, 8, noise=-0.1), ValueError, r"`noise` must be a finite number >= 0, got -0.1"),
    ("noise nan", lambda: D.xor(KEY, 8, noise=float("nan")), ValueError, r"`noise` must be a finite number >= 0, got nan"),
    ("noise string", lambda: D.circles(KEY, 8, noise="big"), TypeError, r"`noise` must be a real number >= 0, got str 'big'"),
    ("spiral classes", lambda: D.spirals(KEY, 8, classes=1), ValueError, r"`classes` must be an int >= 2, got 1"),
    ("blob classes", lambda: D.blobs(KEY, 8, classes=1), ValueError, r"`classes` must be an int >= 2, got 1"),
    (
        "blob centers 1-d",
        lambda: D.blobs(KEY, 8, centers=[1.0, 2.0]),
        ValueError,
        r"`centers` must have shape \(K, d\) with K >= 2 classes, got shape \(2,\)",
    ),
    (
        "blob classes vs centers",
        lambda: D.blobs(KEY, 8, classes=2, centers=np.zeros((3, 2))),
        ValueError,
        r"`classes` \(=2\) disagrees with `centers`, which has 3 rows",
    ),
    (
        "circle factor",
        lambda: D.circles(KEY, 8, factor=1.0),
        ValueError,
        r"`factor` \(the inner radius\) must be a number in \[0, 1\), got 1.0",
    ),
    ("key int", lambda: D.moons(0, 8), TypeError, r"`key` must be a single jax.random.key\(seed\)"),
    (
        "key batch",
        lambda: D.spirals(jax.random.split(KEY, 2), 8),
        TypeError,
        r"`key` must be a single jax.random.key.*shape \(2,\)",
    ),
    ("xor needs key", lambda: D.xor(None, 8, 0.1), TypeError, r"`key` is required to sample XOR \(n=8, noise=0.1\)"),
    ("xor bad key", lambda: D.xor("k"), TypeError, r"`key` must be a single jax.random.key"),
    (
        "split fraction 0",
        lambda: D.train_test_split(KEY, _X, _Y, 0.0),
        ValueError,
        r"`test_fraction` must be a number in \(0, 1\), got 0.0",
    ),
    (
        "split fraction 1",
        lambda: D.train_test_split(KEY, _X, _Y, 1),
        ValueError,
        r"`test_fraction` must be a number in \(0, 1\), got 1",
    ),
    (
        "split fraction str",
        lambda: D.train_test_split(KEY, _X, _Y, "0.2"),
        ValueError,
        r"`test_fraction` must be a number in \(0, 1\), got '0.2'",
    ),
    (
        "split empty train",
        lambda: D.train_test_split(KEY, _X[:2], _Y[:2], 0.9),
        ValueError,
        r"leaves 0 to train on and 2 to test",
    ),
    (
        "split length",
        lambda: D.train_test_split(KEY, _X, _Y[:3], 0.5),
        ValueError,
        r"`x` and `y` need the same number of rows, got shapes \(4, 2\) and \(3,\)",
    ),
    ("split key", lambda: D.train_test_split(1, _X, _Y), TypeError, r"`key` must be a single jax.random.key"),
    ("split x not array", lambda: D.train_test_split(KEY, "abc", _Y), TypeError, r"`x` must be an array"),
    (
        "standardize features",
        lambda: D.standardize(_X, np.zeros((3, 5))),
        ValueError,
        r"`others\[0\]` has shape \(3, 5\) but `x_train` has \(4, 2\)",
    ),
    (
        "standardize empty",
        lambda: D.standardize(np.zeros((0, 2))),
        ValueError,
        r"`x_train` needs at least one row, got shape \(0, 2\)",
    ),
    (
        "one_hot range",
        lambda: D.one_hot(jnp.array([0, 3]), 3),
        ValueError,
        r"`y` must lie in \[0, 3\) for num_classes=3, got values in \[0, 3\]",
    ),
    ("one_hot negative", lambda: D.one_hot(np.array([-1, 0]), 2), ValueError, r"`y` must lie in \[0, 2\)"),
    (
        "one_hot floats",
        lambda: D.one_hot(jnp.array([0.0, 1.0]), 2),
        TypeError,
        r"`y` must hold integer class indices, got dtype float32",
    ),
    ("one_hot classes", lambda: D.one_hot(_Y, 0), ValueError, r"`num_classes` must be an int >= 1, got 0"),
    ("mnist1d samples", lambda: D.mnist1d(num_samples=5), ValueError, r"`num_samples` must be an int >= 10, got 5"),
    ("mnist1d seed", lambda: D.mnist1d(seed=1.5), TypeError, r"`seed` must be an int >= 0, got float 1.5"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
