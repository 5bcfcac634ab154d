"""The blocks' hand-derived backward passes against independent oracles (issue 26, item 5).

A derivative is never checked against the formula it implements. The oracles here are

- ``jax.vjp`` of each block's own forward pass (running statistics behind ``stop_gradient``), with a
  RANDOM upstream gradient ``dy``: a check through ``loss = y.sum()`` (``dy`` = ones) cannot see a
  train-mode BatchNorm's input gradient at all, which is exactly zero whatever the code does
  (:func:`test_a_sum_loss_cannot_see_batchnorms_input_gradient` shows a wrong backward passing it);
- ``jax.grad`` of a whole network's objective (``network_step_grads(..., "autodiff")``);
- central finite differences of the objective, in float64;
- for random compositions (hypothesis: depth, widths, block order, nesting, modes, dtypes), ``jax.grad``
  with a bound that follows the drawn network's conditioning (see ``rounding_spread``).

Then bad input through the public API (issue 26, item 6). PyTorch is the oracle of
``test_blocks_torch.py``; CS231n's published numbers of ``test_blocks_cs231n.py``.

Errors are measured per leaf, relative to the leaf's largest entry, with a floor of 10⁻² of the largest
entry of the whole gradient (:func:`grad_err`): the bias gradient of a Dense right before a train-mode
BatchNorm is exactly zero (normalising removes the mean), both sides then hold rounding noise, and
noise relative to noise means nothing.
"""

from __future__ import annotations

import contextlib
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import fnn
from fnn.check.derivation import _x64  # jax.enable_x64, or jax.experimental.enable_x64 on older JAX
from fnn.core import activations as A
from fnn.core import losses as L
from fnn.core.blocks import Activate, BatchNorm, Dense, Dropout, LayerNorm, Residual
from fnn.core.network import Network, network_step_grads, network_value

B, N_IN = 6, 4
F64_TOL = 1e-12  # hand-derived vs jax in float64: rounding only
F32_TOL = 5e-4  # the same allowance in float32's unit roundoff (2⁻²⁴ vs 2⁻⁵³: 1e-12 is ~9000 u in float64)


@pytest.fixture
def f64():
    with _x64():
        yield


# ---- the comparison ----------------------------------------------------------------------------------
def grad_err(got, want, floor: float = 1e-2) -> float:
    """Largest over the leaves of max|got − want| / max(‖want leaf‖∞, floor · ‖want‖∞ of all leaves)."""
    lg, tg = jax.tree_util.tree_flatten(got)
    lw, tw = jax.tree_util.tree_flatten(want)
    assert tg == tw, f"tree structures differ:\n{tg}\n{tw}"
    lg = [np.asarray(a, np.float64) for a in lg]
    lw_np = [np.asarray(a, np.float64) for a in lw]
    for a, b in zip(lg, lw_np):
        assert a.shape == b.shape, (a.shape, b.shape)
    scale = max((float(np.max(np.abs(w), initial=0.0)) for w in lw_np), default=0.0)
    worst = 0.0
    for a, b in zip(lg, lw_np):
        denom = max(float(np.max(np.abs(b), initial=0.0)), floor * scale, 1e-300)
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)) / denom)
    return worst


def stop_state(params):
    """``params`` with every running statistic behind ``stop_gradient`` (written here, not fnn's)."""
    if isinstance(params, (list, tuple)):
        return [stop_state(p) for p in params]
    if isinstance(params, dict):
        return {k: jax.tree_util.tree_map(jax.lax.stop_gradient, v) if k == "state" else stop_state(v) for k, v in params.items()}
    return params


def randomize(shapes, seed: int):
    """Random values (NumPy's generator) in the structure of ``shapes`` (arrays or ShapeDtypeStructs):
    weights ~ N(0, 1/n_in), γ ~ 1 + N(0, ¼), other parameters ~ N(0, ¼), running means ~ N(0, ¼),
    running variances ~ U(0.5, 2) (so eval mode uses statistics that are neither init's nor the batch's)."""
    rng = np.random.default_rng(seed)
    flat, tree = jax.tree_util.tree_flatten_with_path(shapes)
    out = []
    for path, leaf in flat:
        names = [getattr(p, "key", None) for p in path]
        normal = rng.standard_normal(leaf.shape)
        if "state" in names:
            v = rng.uniform(0.5, 2.0, leaf.shape) if names[-1] == "var" else 0.5 * normal
        elif names[-1] == "gamma":
            v = 1 + 0.5 * normal
        elif names[-1] == "W":
            v = normal / math.sqrt(leaf.shape[1])
        else:
            v = 0.5 * normal
        out.append(jnp.asarray(v, leaf.dtype))
    return jax.tree_util.tree_unflatten(tree, out)


def _under_state(path) -> bool:
    return any(getattr(p, "key", None) == "state" for p in path)


def state_leaves(tree) -> list:
    """Every leaf under a ``"state"`` key."""
    return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0] if _under_state(path)]


def block_case(block, seed: int, dtype=jnp.float64, batch: int = B, n_in: int = N_IN, shift: float = 0.0, scale: float = 1.0):
    """Random ``(params, x, dy, key)`` for a block (the parameters' structure from ``block.init``)."""
    params = randomize(jax.eval_shape(lambda: block.init(jax.random.key(0), n_in, dtype)), seed)
    rng = np.random.default_rng(seed + 1)
    x = jnp.asarray(shift + scale * rng.standard_normal((batch, n_in)), dtype)
    dy = jnp.asarray(rng.standard_normal((batch, block.out_size(n_in))), dtype)
    return params, x, dy, jax.random.key(seed + 1000)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _manual_and_vjp(block, train, params, x, key, dy):
    y, _, res = block.forward(params, x, key, train)
    manual = block.backward(params, res, dy)
    y_ref, vjp = jax.vjp(lambda p, u: block.forward(stop_state(p), u, key, train)[0], params, x)
    return y, y_ref, manual, vjp(dy)


def manual_and_vjp(block, train, params, x, key, dy):
    """``(y, (grads, dx))`` of the block's forward and backward passes, and ``(grads, dx)`` of ``jax.vjp``
    of its forward pass (the same key: the same dropout masks)."""
    y, y_ref, manual, ref = _manual_and_vjp(block, train, params, x, key, dy)
    np.testing.assert_array_equal(y, y_ref)
    return y, manual, ref


# ---- every block against jax.vjp of its forward pass ---------------------------------------------------
BLOCKS = {
    "dense": Dense(3),
    "dense-no-bias": Dense(3, bias=False),
    "dense-same-width": Dense(N_IN),
    **{f"activate-{a}": Activate(a) for a in A.HIDDEN_NAMES},
    "activate-leaky_relu-0.2": Activate(A.get("leaky_relu", slope=0.2)),
    "activate-elu-0.5": Activate(A.get("elu", alpha=0.5)),
    "dropout-0.3": Dropout(0.3),
    "dropout-0.8": Dropout(0.8),
    "dropout-0": Dropout(0.0),
    "batchnorm-pytorch": BatchNorm(),
    "batchnorm-cs231n": BatchNorm(convention="cs231n"),
    "batchnorm-momentum-eps": BatchNorm(momentum=0.5, eps=1e-2),
    "layernorm": LayerNorm(),
    "layernorm-eps": LayerNorm(eps=1e-2),
    "residual-identity-skip": Residual([Dense(N_IN), Activate("tanh")]),
    "residual-projection": Residual([Dense(5), BatchNorm(), Activate("relu")]),
    "residual-projection-always": Residual([LayerNorm(), Dense(N_IN)], projection="always"),
    "residual-nested": Residual(
        [
            Dense(5),
            Activate("gelu"),
            Residual([BatchNorm(), Activate("relu"), Dropout(0.4), Dense(5)]),
            Dropout(0.2),
            Residual([LayerNorm(), Residual([Activate("tanh"), Dense(3)]), BatchNorm(convention="cs231n")], projection="always"),
        ]
    ),
}


def test_residual_cases_have_the_skip_paths_they_are_named_for():
    def init(name):
        return jax.eval_shape(lambda: BLOCKS[name].init(jax.random.key(0), N_IN, jnp.float32))

    assert "proj" not in init("residual-identity-skip")
    assert "proj" in init("residual-projection")
    assert "proj" in init("residual-projection-always")
    nested = init("residual-nested")
    assert "proj" in nested and "proj" not in nested["blocks"][2] and "proj" in nested["blocks"][4]
    assert "proj" in nested["blocks"][4]["blocks"][1]  # tanh then Dense(3): width 5 -> 3


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(BLOCKS))
def test_backward_equals_vjp_of_the_forward_pass(f64, name, train):
    block = BLOCKS[name]
    params, x, dy, key = block_case(block, seed=len(name))
    _, (grads, dx), (grads_ref, dx_ref) = manual_and_vjp(block, train, params, x, key, dy)
    assert dx.dtype == jnp.float64
    assert grad_err((grads, dx), (grads_ref, dx_ref)) <= F64_TOL
    for leaf in state_leaves(grads):  # running statistics are not trained
        np.testing.assert_array_equal(leaf, 0)
    assert float(jnp.max(jnp.abs(dx_ref))) > 1e-3  # a check of something: the input gradient is not ~0


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("block", [BatchNorm(), BatchNorm(convention="cs231n"), BatchNorm(momentum=0.3, eps=1e-1)], ids=repr)
@pytest.mark.parametrize("shift, scale, batch", [(0.0, 1.0, B), (12.0, 5.0, 50)], ids=["standard", "offset-50"])
def test_batchnorm_staged_backward_equals_backward_and_jax(f64, block, train, shift, scale, batch):
    """CS231n's two derivations (the staged graph and the closed form) and jax agree; ``offset-50`` is
    CS231n's input, 5·N(0, 1) + 12 (a mean far from 0 makes the staged form's cancellations larger)."""
    params, x, dy, _ = block_case(block, seed=3, batch=batch, shift=shift, scale=scale)
    _, closed, ref = manual_and_vjp(block, train, params, x, None, dy)
    res = block.forward(params, x, None, train)[2]
    staged = block.backward_staged(params, res, dy)
    assert grad_err(staged, ref) <= F64_TOL
    assert grad_err(closed, ref) <= F64_TOL
    assert grad_err(staged, closed) <= F64_TOL


def test_a_sum_loss_cannot_see_batchnorms_input_gradient(f64):
    """Why every check here draws ``dy`` at random. With E = Σ y, i.e. dy = ones, each column of a
    train-mode BatchNorm's output sums to B·β whatever x is, so ∂E/∂x = 0 exactly; a backward pass that
    drops the variance path, ∂x = (ĝ − mean_b ĝ)/√(σ² + ε), also returns 0 there and passes. A random
    dy tells the two apart."""
    block = BatchNorm()
    params, x, dy, _ = block_case(block, seed=11)
    y, _, res = block.forward(params, x, None, True)

    def wrong_backward(params, res, dy):  # the variance path dropped: a plausible bug
        _, inv, _ = res
        g = dy * params["gamma"]
        return inv * (g - jnp.mean(g, axis=0))

    ones = jnp.ones_like(y)
    _, (_, dx), (_, dx_ref) = manual_and_vjp(block, True, params, x, None, ones)
    scale = float(jnp.max(params["gamma"] * res[1]))  # the size ∂x would have without the batch coupling
    for d in (dx_ref, dx, wrong_backward(params, res, ones)):
        assert float(jnp.max(jnp.abs(d))) <= 1e-13 * scale  # all three: zero up to rounding

    _, (_, dx), (_, dx_ref) = manual_and_vjp(block, True, params, x, None, dy)
    assert grad_err(dx, dx_ref) <= F64_TOL
    assert grad_err(wrong_backward(params, res, dy), dx_ref) > 0.1  # the random dy catches the bug


# ---- dropout ---------------------------------------------------------------------------------------
def test_dropout_backward_uses_the_forward_passs_mask(f64):
    block = Dropout(0.5)
    params, x, dy, key = block_case(block, seed=5, batch=20)
    y, (_, dx), (_, dx_same_key) = manual_and_vjp(block, True, params, x, key, dy)
    _, _, (_, dx_other_key) = manual_and_vjp(block, True, params, x, jax.random.key(99), dy)
    assert grad_err(dx, dx_same_key) <= F64_TOL
    assert grad_err(dx, dx_other_key) > 0.5  # a fresh mask would not pass
    np.testing.assert_array_equal(dx == 0, y == 0)  # gradient exactly where the input was kept
    np.testing.assert_array_equal(block.forward(params, x, key, True)[0], y)  # a key gives one mask


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.8])
def test_dropout_keeps_the_expected_fraction_and_mean(rate):
    """Entries kept with probability q = 1 − rate (independently), scaled by 1/q: the kept fraction
    and the mean of the output for x = 1 lie within 5 binomial standard deviations of q and 1."""
    shape = (200, 250)
    n = shape[0] * shape[1]
    q = 1 - rate
    y, _, _ = Dropout(rate).forward({}, jnp.ones(shape, jnp.float32), jax.random.key(int(rate * 10)), True)
    y = np.asarray(y, np.float64)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / q, rtol=1e-6)
    assert abs(kept.mean() - q) <= 5 * math.sqrt(q * (1 - q) / n)
    assert abs(y.mean() - 1) <= 5 * math.sqrt(rate / (q * n))  # Var(m/q) = (1 − q)/q
    # no structure: every row and every column keeps about q of its entries
    for axis, m in ((0, shape[0]), (1, shape[1])):
        frac = kept.mean(axis=axis)
        assert np.max(np.abs(frac - q)) <= 5 * math.sqrt(q * (1 - q) / m)


@pytest.mark.parametrize(
    "block, train, key",
    [
        (Dropout(0.5), False, jax.random.key(0)),
        (Dropout(0.5), False, None),
        (Dropout(0.0), True, jax.random.key(0)),
        (Dropout(0.0), True, None),
    ],
    ids=["eval", "eval-no-key", "rate0", "rate0-no-key"],
)
def test_dropout_is_the_identity_in_eval_mode_and_at_rate_zero(block, train, key):
    x = jax.random.normal(jax.random.key(1), (B, N_IN))
    dy = jax.random.normal(jax.random.key(2), (B, N_IN))
    y, state, res = block.forward({}, x, key, train)
    grads, dx = block.backward({}, res, dy)
    assert state is None and grads == {}
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dx, dy)


def test_a_networks_dropout_blocks_draw_independent_masks_and_none_in_eval_mode():
    """Two Dropout(0.5) in a row keep an entry with probability ¼ if their masks are independent (½ if
    they shared one), and scale it by 4."""
    net = Network(40, [Dropout(0.5), Dropout(0.5)])
    x = 1 + jnp.arange(50 * 40, dtype=jnp.float32).reshape(50, 40)
    params = net.init(jax.random.key(0))
    ratio = np.asarray(net.apply(params, x, key=jax.random.key(3), train=True) / x)
    assert set(np.unique(np.round(ratio, 4))) <= {0.0, 4.0}
    assert abs((ratio != 0).mean() - 0.25) <= 5 * math.sqrt(0.25 * 0.75 / x.size)
    np.testing.assert_array_equal(net.apply(params, x), x)


# ---- whole networks: manual against jax.grad, and against finite differences --------------------------
def targets(output: str, n_out: int, batch: int, key, dtype):
    """Targets in the output's form, made here (one-hot rows, 0/1 entries or reals)."""
    if output == "softmax":
        return jax.nn.one_hot(jax.random.randint(key, (batch,), 0, n_out), n_out, dtype=dtype)
    if output == "sigmoid":
        return jax.random.bernoulli(key, 0.5, (batch, n_out)).astype(dtype)
    return jax.random.normal(key, (batch, n_out), dtype)


LOSS = {"softmax": "cross_entropy", "sigmoid": "bce", "identity": "mse"}

NETS = {
    "mlp-batch-dropout-residual": fnn.MLP((N_IN, 5, 5, 3), "relu", "softmax", norm="batch", dropout=0.3, residual=True),
    "mlp-layer-tanh": Network.mlp((N_IN, 5, 3), "tanh", "identity", norm="layer"),
    "every-block": Network(
        N_IN,
        [
            Dense(5),
            BatchNorm(convention="cs231n"),
            Activate("gelu"),
            Dropout(0.2),
            Residual(
                [
                    LayerNorm(),
                    Dense(5),
                    Activate("elu"),
                    Residual([Dense(5), BatchNorm(), Activate("leaky_relu")], projection="always"),
                ]
            ),
            Residual([Dense(3), Activate("tanh"), Dropout(0.5)]),
            Dense(2),
        ],
        output="sigmoid",
    ),
}


@functools.lru_cache(maxsize=16)  # (random networks: one compiled pair each; keep few)
def _step_fns(net, loss, train, l2):
    record = L.get(loss)
    return tuple(jax.jit(network_step_grads(net, record, grad, train, l2=l2)) for grad in ("manual", "autodiff"))


def network_case(net, seed: int, dtype=jnp.float64, batch: int = B):
    params = randomize(jax.eval_shape(lambda: net.init(jax.random.key(0), dtype)), seed)
    rng = np.random.default_rng(seed + 1)
    x = jnp.asarray(rng.standard_normal((batch, net.n_in)), dtype)
    t = targets(net.output.name, net.sizes[1], batch, jax.random.key(seed + 2), dtype)
    return params, x, t, jax.random.key(seed + 7)


def manual_vs_autodiff(net, train: bool, l2: bool, seed: int, dtype=jnp.float64) -> tuple[float, float, float]:
    """The relative errors of manual against autodiff: (objective, gradients, updated parameters)."""
    params, x, t, key = network_case(net, seed, dtype)
    manual, autodiff = _step_fns(net, LOSS[net.output.name], train, l2)
    lam = jnp.asarray(0.3, dtype)
    E, grads, new = manual(params, x, t, key, lam)
    E_ref, grads_ref, new_ref = autodiff(params, x, t, key, lam)
    assert E.dtype == dtype and {a.dtype for a in jax.tree_util.tree_leaves(grads)} == {jnp.dtype(dtype)}
    for leaf in state_leaves(grads) + state_leaves(grads_ref):
        np.testing.assert_array_equal(leaf, 0)
    if not train:  # eval mode leaves the running statistics as they were
        for a, b in zip(state_leaves(new), state_leaves(params)):
            np.testing.assert_array_equal(a, b)
    return abs(float(E) - float(E_ref)) / max(abs(float(E_ref)), 1e-300), grad_err(grads, grads_ref), grad_err(new, new_ref)


# every network with L2 in both modes; without L2 (the objective's other branch) the one with every block
NET_CASES = [(name, l2) for name in NETS for l2 in ((True, False) if name == "every-block" else (True,))]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name, l2", NET_CASES, ids=[f"{n}-{'l2' if l2 else 'no-l2'}" for n, l2 in NET_CASES])
def test_network_manual_gradients_equal_autodiff(f64, name, train, l2):
    errs = manual_vs_autodiff(NETS[name], train, l2, seed=len(name))
    assert max(errs) <= F64_TOL, errs


def test_the_running_statistics_move_in_train_mode_only(f64):
    net = NETS["mlp-batch-dropout-residual"]
    params, x, t, key = network_case(net, seed=1)
    for train in (True, False):
        for fn in _step_fns(net, "cross_entropy", train, False):
            new = fn(params, x, t, key, jnp.zeros((), jnp.float64))[2]
            moved = [not np.array_equal(a, b) for a, b in zip(state_leaves(new), state_leaves(params))]
            assert len(moved) == 4 and all(moved) == train and any(moved) == train


FD_NET = Network(
    3,
    [
        Dense(4),
        BatchNorm(),
        Activate("tanh"),
        Dropout(0.3),
        Residual([Dense(4), LayerNorm(), Activate("gelu")]),
        Residual([Dense(2), BatchNorm(convention="cs231n"), Activate("softplus")]),
        Dense(2),
    ],
    output="identity",
)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_network_gradients_equal_central_differences(f64, train):
    """Smooth activations (no kink for a difference to straddle); train mode with a fixed dropout key.
    The gradients through the public API: ``fnn.manual_value_and_grad`` for the parameters and
    ``jax.grad`` of ``fnn.with_manual_vjp`` (its reverse pass the blocks' backward passes) for x."""
    net, lam = FD_NET, 0.1
    params, x, t, key = network_case(net, seed=2)
    E_fn = jax.jit(network_value(net, L.get("mse"), train, l2=True))
    _, grads = jax.jit(fnn.manual_value_and_grad(net, "mse", train=train, l2=lam))(params, x, t, key)
    dx = jax.jit(jax.grad(fnn.with_manual_vjp(net, "mse", train=train, l2=lam), argnums=1))(params, x, t, key)

    flat, unravel = ravel_pytree((params, x))
    # the running statistics are not perturbed (their gradient is zero by definition)
    under_state = jax.tree_util.tree_map_with_path(lambda path, a: jnp.full(a.shape, float(_under_state(path)), a.dtype), params)
    mask = np.asarray(ravel_pytree((under_state, jnp.zeros_like(x)))[0]) == 0

    def E_at(v):
        p, u = unravel(v)
        return E_fn(p, u, t, key, jnp.asarray(lam, jnp.float64))

    idx = np.flatnonzero(mask)
    h = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(np.asarray(flat)[idx]))
    steps = np.zeros((len(idx), flat.size))
    steps[np.arange(len(idx)), idx] = h
    plus = jax.vmap(E_at)(flat + steps)
    minus = jax.vmap(E_at)(flat - steps)
    fd = np.asarray((plus - minus) / (2 * h))
    manual = np.asarray(ravel_pytree((grads, dx))[0])[idx]
    err = np.max(np.abs(manual - fd)) / np.max(np.abs(fd))
    assert err <= 1e-7, err  # the differences' truncation: measured 4.1e-9 (train), 2.5e-11 (eval)
    assert np.all(np.asarray(ravel_pytree((grads, dx))[0])[~mask] == 0)


# ---- random compositions ------------------------------------------------------------------------------
# Few widths and one batch size, so that most compiled pieces repeat across examples.
WIDTHS = (3, 5)
RANDOM_ACTS = (*A.HIDDEN_NAMES,)


def block_lists(depth: int) -> st.SearchStrategy:
    """Lists of 1-4 blocks in any order; residuals (``auto`` or ``always`` projection) nest ``depth`` deep."""
    block = st.one_of(
        st.sampled_from(WIDTHS).map(Dense),
        st.sampled_from(RANDOM_ACTS).map(Activate),
        st.sampled_from((0.0, 0.3, 0.6)).map(Dropout),
        st.sampled_from(("pytorch", "cs231n")).map(lambda c: BatchNorm(convention=c)),
        st.just(LayerNorm()),
    )
    if depth:
        block = st.one_of(block, st.builds(Residual, block_lists(depth - 1), st.sampled_from(("auto", "always"))))
    return st.lists(block, min_size=1, max_size=4)


@st.composite
def networks(draw, depth: int = 2) -> Network:
    output = draw(st.sampled_from(tuple(LOSS)))
    return Network(N_IN, [*draw(block_lists(depth)), Dense(3)], output)


# The bound for a random network takes its conditioning into account. A random composition can be
# ill-conditioned (batch norms of columns that vary by less than √ε, layer norms of rows that dropout
# zeroed), and there two correct computations of the same gradient differ by far more than the rounding
# of a well-conditioned one: one network of 5 nested blocks the sweep drew (1 in ~300) had manual and
# jax.grad 6e-10 apart in float64 (7.6e-4 in float32). So each draw also measures the spread of
# jax.grad's own gradient when every input and parameter moves by a few units in the last place
# (relative 4u, random signs, three draws), and the bound is max(TOL, 30·spread): for that network,
# spreads of 6.3e-9 (float64) and 2.5e-4 (float32). Over 150 other random networks (depth 3): manual vs
# jax.grad ≤ 1.0e-13 in float64 and ≤ 2.7e-5 in float32, at most 3.9 and 6 times the spread, so the fixed
# bounds decide nearly every draw. A wrong derivative is off by O(1).
BASE_TOL = {jnp.dtype("float64"): F64_TOL, jnp.dtype("float32"): F32_TOL}


def rounding_spread(net, train: bool, l2: bool, seed: int, dtype) -> float:
    """How far jax.grad's gradient of ``network_case(net, seed, dtype)`` moves (:func:`grad_err`) when
    every input and parameter moves by a relative 4u, u the unit roundoff (the largest of three draws)."""
    params, x, t, key = network_case(net, seed, dtype)
    _, autodiff = _step_fns(net, LOSS[net.output.name], train, l2)
    lam = jnp.asarray(0.3, dtype)
    four_u = 2 * float(jnp.finfo(dtype).eps)
    rng = np.random.default_rng(seed)
    g = autodiff(params, x, t, key, lam)[1]
    spread = 0.0
    for _ in range(3):
        moved = jax.tree_util.tree_map(lambda a: (a * (1 + four_u * rng.choice([-1.0, 1.0], a.shape))).astype(dtype), (params, x))
        spread = max(spread, grad_err(autodiff(*moved, t, key, lam)[1], g))
    return spread


def _random_network_check(net, train, l2, seed, dtype):
    with _x64() if dtype == jnp.float64 else contextlib.nullcontext():
        errs = manual_vs_autodiff(net, train, l2, seed, dtype)
        tol = max(BASE_TOL[jnp.dtype(dtype)], 30 * rounding_spread(net, train, l2, seed, dtype))
    assert max(errs) <= tol, (errs, tol, net)


RANDOM = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@settings(max_examples=6, **RANDOM)
@given(net=networks(), train=st.booleans(), l2=st.booleans(), seed=st.integers(0, 2**16))
def test_random_networks_float64(net, train, l2, seed):
    _random_network_check(net, train, l2, seed, jnp.float64)


@settings(max_examples=4, **RANDOM)
@given(net=networks(), train=st.booleans(), l2=st.booleans(), seed=st.integers(0, 2**16))
def test_random_networks_float32(net, train, l2, seed):
    _random_network_check(net, train, l2, seed, jnp.float32)


@pytest.mark.slow
@settings(max_examples=200, **RANDOM)
@given(net=networks(depth=3), train=st.booleans(), l2=st.booleans(), seed=st.integers(0, 2**16), double=st.booleans())
def test_random_networks_sweep(net, train, l2, seed, double):
    _random_network_check(net, train, l2, seed, jnp.float64 if double else jnp.float32)


# ---- bad input, through the public API (issue 26, item 6) ---------------------------------------------
BN_NET = fnn.MLP((N_IN, 5, 3), norm="batch", residual=True)  # the BatchNorm sits in params[0]["blocks"][1]


def _trained_params(net, seed=0):
    """Parameters after one train-mode step (the running statistics moved off init's values)."""
    _, x, t, key = network_case(net, seed, jnp.float32)
    params = net.init(jax.random.key(seed))
    manual, _ = _step_fns(net, LOSS[net.output.name], True, False)
    return manual(params, x, t, key, jnp.zeros(()))[2]


def test_batchnorm_in_train_mode_refuses_a_batch_of_one():
    params = _trained_params(BN_NET)
    x = jnp.ones((1, N_IN))
    with pytest.raises(ValueError, match="batch norm in train mode needs a batch of at least 2 examples.*shape \\(1, 4\\)"):
        BN_NET.apply(params, x, train=True)
    with pytest.raises(ValueError, match="batch norm in train mode needs a batch of at least 2.*shape \\(4,\\)"):
        fnn.manual_value_and_grad(BN_NET, "mse")(params, x[0], jnp.zeros(3))
    with pytest.raises(ValueError, match="BatchNorm in train mode needs at least 2 examples.*got a batch of 1"):
        BatchNorm().forward(params[0]["blocks"][1], x, None, True)
    assert BN_NET.apply(params, x).shape == (1, 3)  # eval mode takes one example


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1, float("nan"), float("inf")])
def test_dropout_refuses_a_rate_outside_0_1(rate):
    with pytest.raises(ValueError, match=r"`Dropout.drop_rate` must be a number in \[0, 1\)"):
        Dropout(rate)
    with pytest.raises(ValueError, match=r"`dropout` must be a number in \[0, 1\)"):
        fnn.MLP((N_IN, 5, 3), dropout=rate)


@pytest.mark.parametrize("rate", ["0.5", True, None])
def test_dropout_refuses_a_rate_that_is_not_a_number(rate):
    with pytest.raises(TypeError, match="`Dropout.drop_rate` must be a real number"):
        Dropout(rate)


def test_eval_mode_refuses_running_statistics_never_trained():
    params = BN_NET.init(jax.random.key(0))
    x = jnp.ones((2, N_IN))
    for call in (
        lambda: BN_NET.apply(params, x),
        lambda: fnn.manual_value_and_grad(BN_NET, "mse", train=False)(params, x, jnp.zeros((2, 3))),
    ):
        with pytest.raises(ValueError, match=r"`params\[0\]\['blocks'\]\[1\]\['state'\]` were never trained"):
            call()
    assert BN_NET.apply(params, x, train=True).shape == (2, 3)  # train mode uses the batch's statistics
    assert BN_NET.apply(_trained_params(BN_NET), x).shape == (2, 3)


@pytest.mark.parametrize("entry, value", [("mean", float("nan")), ("var", float("nan")), ("var", float("inf"))])
def test_eval_mode_refuses_running_statistics_that_are_not_finite(entry, value):
    params = _trained_params(BN_NET)
    bn = params[0]["blocks"][1]
    state = {**bn["state"], entry: bn["state"][entry].at[1].set(value)}
    params = [{**params[0], "blocks": [params[0]["blocks"][0], {**bn, "state": state}, *params[0]["blocks"][2:]]}, *params[1:]]
    with pytest.raises(ValueError, match=r"`params\[0\]\['blocks'\]\[1\]\['state'\]` hold NaN or inf"):
        BN_NET.apply(params, jnp.ones((2, N_IN)))


@pytest.mark.parametrize(
    "other, error, match",
    [
        (
            fnn.MLP((N_IN, 6, 3), norm="batch", residual=True),
            ValueError,
            r"`params\[0\]\['blocks'\]\[0\]\['W'\]` has shape \(6, 4\)",
        ),
        (
            fnn.MLP((N_IN, 5, 3), norm="layer", residual=True),
            ValueError,
            r"`params\[0\]\['blocks'\]\[0\]` must be a dict with keys \['W'\] \(Residual\), got \['W', 'b'\]",
        ),
        (
            fnn.MLP((N_IN, 5, 5, 3), norm="batch", residual=True),
            ValueError,
            r"`params` has 3 entries but the network has 2 blocks",
        ),
    ],
    ids=["width", "layer-norm", "depth"],
)
def test_params_of_another_network_are_refused_by_name(other, error, match):
    with pytest.raises(error, match=match):
        BN_NET.apply(other.init(jax.random.key(0)), jnp.ones((2, N_IN)), train=True)


def test_a_non_block_is_refused_by_name():
    with pytest.raises(TypeError, match=r"`blocks\[1\]` must be an fnn block, got str.*wrap it, fnn.blocks.Activate"):
        Network(N_IN, [Dense(3), "relu"])
    with pytest.raises(TypeError, match=r"`Residual.blocks\[1\]` must be an fnn block"):
        Residual([Dense(3), jnp.tanh])
    with pytest.raises(TypeError, match=r"`blocks\[0\]` must be an fnn block, got Activation"):
        Network(N_IN, [A.get("relu")])
    with pytest.raises(ValueError, match="`blocks` is empty"):
        Network(N_IN, [])
