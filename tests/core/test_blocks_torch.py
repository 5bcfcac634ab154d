"""fnn's blocks against PyTorch, in float64: equal to rounding (≤ 1e-12).

PyTorch is an independent implementation of the same definitions (``torch.nn.BatchNorm1d``,
``torch.nn.LayerNorm``, ``torch.nn.Linear``, autograd for the gradients), so it checks fnn's forward
passes, its running-statistics conventions (momentum, the unbiased variance, the starting values) and
its hand-derived backward passes at once. Every gradient is taken with a random upstream gradient
(``y.backward(dy)``), never through ``y.sum()``, which cannot see a batch norm's input gradient.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fnn  # noqa: E402
from fnn.check.derivation import _x64  # noqa: E402
from fnn.core import losses as L  # noqa: E402
from fnn.core.blocks import BatchNorm, LayerNorm, chain_backward, chain_forward, with_states  # noqa: E402
from fnn.core.network import Network, network_step_grads  # noqa: E402

torch.set_num_threads(1)
TOL = 1e-12


@pytest.fixture(autouse=True)
def f64():
    with _x64():
        yield


def rel_err(got, want, floor: float = 1e-2) -> float:
    """Largest over paired leaves of max|got − want| / max(‖want leaf‖∞, floor · ‖want‖∞ of all leaves)
    (the floor: a leaf whose exact value is 0, such as the bias gradient of a Linear right before a
    train-mode batch norm, holds rounding noise on both sides)."""
    got = [np.asarray(a, np.float64) for a in jax.tree_util.tree_leaves(got)]
    want = [
        np.asarray(a.detach().numpy() if isinstance(a, torch.Tensor) else a, np.float64) for a in jax.tree_util.tree_leaves(want)
    ]
    assert len(got) == len(want)
    scale = max(float(np.max(np.abs(w), initial=0.0)) for w in want)
    worst = 0.0
    for a, b in zip(got, want):
        assert a.shape == b.shape, (a.shape, b.shape)
        worst = max(
            worst, float(np.max(np.abs(a - b), initial=0.0)) / max(float(np.max(np.abs(b), initial=0.0)), floor * scale, 1e-300)
        )
    return worst


def t(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float64)


# ---- BatchNorm1d ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("momentum, eps", [(0.1, 1e-5), (0.3, 1e-3)])
def test_batchnorm_equals_torch_batchnorm1d(momentum, eps):
    """Train steps on batches of different sizes (the unbiased variance's B/(B − 1) differs), then eval
    mode: outputs, gradients for x, γ and β, and the running statistics after every step."""
    D = 5
    rng = np.random.default_rng(0)
    block = BatchNorm(momentum=momentum, eps=eps)
    params = block.init(jax.random.key(0), D, jnp.float64)
    params = {**params, "gamma": jnp.asarray(1 + 0.5 * rng.standard_normal(D)), "beta": jnp.asarray(rng.standard_normal(D))}
    tbn = torch.nn.BatchNorm1d(D, eps=eps, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        tbn.weight.copy_(t(params["gamma"]))
        tbn.bias.copy_(t(params["beta"]))
    # the starting statistics are PyTorch's: mean 0, variance 1
    assert rel_err(params["state"], [tbn.running_mean, tbn.running_var]) == 0.0

    def both(x, dy, train):
        tbn.train(train)
        tbn.zero_grad()
        xt = t(x).requires_grad_(True)
        yt = tbn(xt)
        yt.backward(t(dy))
        y, state, res = block.forward(params, jnp.asarray(x), None, train)
        grads, dx = block.backward(params, res, jnp.asarray(dy))
        assert rel_err(y, yt) <= TOL
        assert rel_err([dx, grads["gamma"], grads["beta"]], [xt.grad, tbn.weight.grad, tbn.bias.grad]) <= TOL
        np.testing.assert_array_equal(grads["state"]["mean"], 0)
        np.testing.assert_array_equal(grads["state"]["var"], 0)
        return state

    for batch in (8, 3, 16, 2):
        x = 3 * rng.standard_normal((batch, D)) + 2
        state = both(x, rng.standard_normal((batch, D)), train=True)
        params = {**params, "state": state}
        assert rel_err([state["mean"], state["var"]], [tbn.running_mean, tbn.running_var]) <= TOL
    x = 3 * rng.standard_normal((7, D)) + 2
    assert both(x, rng.standard_normal((7, D)), train=False) is None
    # the public API in eval mode: the running statistics, one example or a batch
    net = Network(D, [BatchNorm(momentum=momentum, eps=eps)])
    tbn.eval()
    assert rel_err(net.apply([params], jnp.asarray(x)), tbn(t(x))) <= TOL
    assert rel_err(net.apply([params], jnp.asarray(x[0])), tbn(t(x[:1]))[0]) <= TOL


# ---- LayerNorm -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
@pytest.mark.parametrize("batch", [1, 6])
def test_layernorm_equals_torch_layernorm(eps, batch):
    D = 5
    rng = np.random.default_rng(1)
    block = LayerNorm(eps=eps)
    params = {"gamma": jnp.asarray(1 + 0.5 * rng.standard_normal(D)), "beta": jnp.asarray(rng.standard_normal(D))}
    tln = torch.nn.LayerNorm(D, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        tln.weight.copy_(t(params["gamma"]))
        tln.bias.copy_(t(params["beta"]))
    x = 2 * rng.standard_normal((batch, D)) - 1
    dy = rng.standard_normal((batch, D))
    for train in (True, False):  # layer norm has no mode: the same in both
        tln.zero_grad()
        xt = t(x).requires_grad_(True)
        yt = tln(xt)
        yt.backward(t(dy))
        y, state, res = block.forward(params, jnp.asarray(x), None, train)
        grads, dx = block.backward(params, res, jnp.asarray(dy))
        assert state is None
        assert rel_err(y, yt) <= TOL
        assert rel_err([dx, grads["gamma"], grads["beta"]], [xt.grad, tln.weight.grad, tln.bias.grad]) <= TOL


# ---- a residual MLP: Linear → BatchNorm1d → ReLU, with a skip connection ----------------------------------
class TorchResidual(torch.nn.Module):
    """relu(bn(linear(x))) + x, or + proj(x) (a Linear without bias) where the widths differ; the
    Linear before the batch norm without bias, as fnn's Network.mlp builds it (β takes its place)."""

    def __init__(self, n_in: int, width: int):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, width, bias=False, dtype=torch.float64)
        self.bn = torch.nn.BatchNorm1d(width, momentum=0.1, eps=1e-5, dtype=torch.float64)
        self.proj = torch.nn.Linear(n_in, width, bias=False, dtype=torch.float64) if n_in != width else None

    def forward(self, x):
        f = torch.relu(self.bn(self.linear(x)))
        return f + (self.proj(x) if self.proj is not None else x)


SIZES = (4, 6, 6, 3)  # a projection around the first hidden layer, the identity around the second


def torch_net(params) -> torch.nn.Sequential:
    """The PyTorch twin of ``fnn.MLP(SIZES, norm="batch", residual=True)`` holding fnn's ``params``
    (fnn's W is (n_out, n_in), as Linear.weight)."""
    layers = [TorchResidual(a, b) for a, b in itertools.pairwise(SIZES[:-1])]
    out = torch.nn.Linear(SIZES[-2], SIZES[-1], dtype=torch.float64)
    with torch.no_grad():
        for layer, p in zip(layers, params[:-1]):
            dense, bn, _ = p["blocks"]
            layer.linear.weight.copy_(t(dense["W"]))
            layer.bn.weight.copy_(t(bn["gamma"]))
            layer.bn.bias.copy_(t(bn["beta"]))
            layer.bn.running_mean.copy_(t(bn["state"]["mean"]))
            layer.bn.running_var.copy_(t(bn["state"]["var"]))
            if layer.proj is not None:
                layer.proj.weight.copy_(t(p["proj"]["W"]))
        out.weight.copy_(t(params[-1]["W"]))
        out.bias.copy_(t(params[-1]["b"]))
    return torch.nn.Sequential(*layers, out)


def torch_as_fnn(model, what: str) -> list:
    """``what="grad"``: the model's gradients in fnn's parameter structure (zeros for the running
    statistics); ``"value"``: its parameters and running statistics."""

    def g(p):
        return p.grad if what == "grad" else p.detach()

    def stat(s):
        return torch.zeros_like(s) if what == "grad" else s

    out = []
    for layer in list(model)[:-1]:
        bn = {
            "gamma": g(layer.bn.weight),
            "beta": g(layer.bn.bias),
            "state": {"mean": stat(layer.bn.running_mean), "var": stat(layer.bn.running_var)},
        }
        p = {"blocks": [{"W": g(layer.linear.weight)}, bn, {}]}
        if layer.proj is not None:
            p["proj"] = {"W": g(layer.proj.weight)}
        out.append(p)
    out.append({"W": g(model[-1].weight), "b": g(model[-1].bias)})
    return [jax.tree_util.tree_map(np.asarray, p) for p in out]


def perturbed(params, rng):
    """``params`` plus N(0, 0.1²) noise (zero biases and unit γ would hide mistakes), the running
    statistics left at init's values (PyTorch's too: mean 0, variance 1)."""

    def noisy(path, a):
        if any(getattr(k, "key", None) == "state" for k in path):
            return a
        return a + 0.1 * jnp.asarray(rng.standard_normal(a.shape))

    return jax.tree_util.tree_map_with_path(noisy, params)


def test_the_twin_is_the_network_fnn_builds():
    net = fnn.MLP(SIZES, norm="batch", residual=True)
    assert [b.blocks[0].bias for b in net.blocks[:-1]] == [False, False]
    params = net.init(jax.random.key(0), jnp.float64)
    model = torch_net(params)
    assert jax.tree_util.tree_structure(torch_as_fnn(model, "value")) == jax.tree_util.tree_structure(params)
    assert rel_err(torch_as_fnn(model, "value"), params) == 0.0
    assert net.num_params == sum(p.numel() for p in model.parameters())


def test_residual_mlp_equals_torch_over_train_steps_then_eval():
    """Three SGD steps in train mode (random upstream gradients; every parameter's gradient, the input's
    and the running statistics compared after each), then the MSE objective through
    ``network_step_grads``, then eval mode."""
    net = fnn.MLP(SIZES, norm="batch", residual=True)
    rng = np.random.default_rng(2)
    params = perturbed(net.init(jax.random.key(0), jnp.float64), rng)
    model = torch_net(params)
    lr = 0.1

    for _ in range(3):
        x = rng.standard_normal((8, SIZES[0]))
        dy = rng.standard_normal((8, SIZES[-1]))
        model.train()
        model.zero_grad()
        xt = t(x).requires_grad_(True)
        zt = model(xt)
        zt.backward(t(dy))
        z, states, res = chain_forward(net.blocks, params, jnp.asarray(x), None, True)
        grads, dx = chain_backward(net.blocks, params, res, jnp.asarray(dy))
        assert rel_err(z, zt) <= TOL
        assert rel_err(grads, torch_as_fnn(model, "grad")) <= TOL
        assert rel_err(dx, xt.grad) <= TOL
        params = with_states(params, states)
        assert rel_err(params, torch_as_fnn(model, "value")) <= TOL  # the running statistics moved alike
        with torch.no_grad():  # an SGD step in both
            for p in model.parameters():
                p.sub_(lr * p.grad)
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)  # (the statistics' gradient is 0)

    # the objective: E = mean_b ½‖z − d‖², fnn's manual gradients (and its new running statistics)
    x = rng.standard_normal((5, SIZES[0]))
    d = rng.standard_normal((5, SIZES[-1]))
    E, grads, params = jax.jit(network_step_grads(net, L.get("mse"), "manual", True))(
        params, jnp.asarray(x), jnp.asarray(d), None, None
    )
    model.zero_grad()
    Et = 0.5 * ((model(t(x)) - t(d)) ** 2).sum(dim=1).mean()
    Et.backward()
    assert rel_err(E, Et) <= TOL
    assert rel_err(grads, torch_as_fnn(model, "grad")) <= TOL
    assert rel_err(params, torch_as_fnn(model, "value")) <= TOL

    # eval mode: the running statistics normalise; outputs and gradients
    model.eval()
    x = rng.standard_normal((4, SIZES[0]))
    dy = rng.standard_normal((4, SIZES[-1]))
    model.zero_grad()
    xt = t(x).requires_grad_(True)
    zt = model(xt)
    zt.backward(t(dy))
    assert rel_err(net.apply(params, jnp.asarray(x)), zt) <= TOL
    z, states, res = chain_forward(net.blocks, params, jnp.asarray(x), None, False)
    grads, dx = chain_backward(net.blocks, params, res, jnp.asarray(dy))
    assert rel_err(grads, torch_as_fnn(model, "grad")) <= TOL
    assert rel_err(dx, xt.grad) <= TOL


def test_cross_entropy_objective_equals_torch():
    """fnn.manual_value_and_grad (softmax output, integer labels) against F.cross_entropy, train mode."""
    net = Network.mlp(SIZES, "relu", "softmax", norm="batch", residual=True)
    rng = np.random.default_rng(3)
    params = perturbed(net.init(jax.random.key(1), jnp.float64), rng)
    model = torch_net(params)
    x = rng.standard_normal((9, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 9)
    E, grads = fnn.manual_value_and_grad(net, "cross_entropy", l2=0.25)(params, jnp.asarray(x), jnp.asarray(y))
    model.train()
    model.zero_grad()
    weights = [p for name, p in model.named_parameters() if name.endswith("weight") and ".bn." not in name]
    Et = torch.nn.functional.cross_entropy(model(t(x)), torch.tensor(y)) + 0.5 * 0.25 * sum((w**2).sum() for w in weights)
    Et.backward()
    assert len(weights) == net.num_layers == 4  # two Linear, one projection, the output layer
    assert rel_err(E, Et) <= TOL
    assert rel_err(grads, torch_as_fnn(model, "grad")) <= TOL
