"""Bring your own derivation: check_derivation, and user-made activations and losses through every entry point.

The references are independent of the derivative under test: ``jax.grad`` of the user's function
and central finite differences. Wrong derivatives are written on purpose and must be caught.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import tree_rel_err

import fnn
from fnn import activations as A
from fnn import losses as L

sig = jax.nn.sigmoid


def swish_f(z):
    return z * sig(z)


def swish_df(z, h):  # d/dz z σ(z) = σ(z) + z σ(z)(1 − σ(z))
    s = sig(z)
    return s * (1 + z * (1 - s))


SWISH = fnn.Activation("swish", swish_f, swish_df)


def huber_fn(h, y):
    r = jnp.abs(h - y)
    return jnp.sum(jnp.where(r <= 1.0, 0.5 * r**2, r - 0.5), axis=-1)


def huber_grad(h, y):
    return jnp.clip(h - y, -1.0, 1.0)


HUBER = fnn.Loss("huber", huber_fn, huber_grad)


# ---- check_derivation: every built-in passes, wrong derivations fail and say where ---------------


@pytest.mark.parametrize("name", A.HIDDEN_NAMES)
def test_every_builtin_activation_passes(name):
    r = fnn.check_derivation(fnn.activations.get(name))
    assert r.ok, str(r)
    assert r.comparisons[0].against == "jax.grad" and r.comparisons[0].points > 200


@pytest.mark.parametrize(
    "loss, output", [("mse", None), ("mse", "sigmoid"), ("mse", "softmax"), ("cross_entropy", None), ("bce", None)]
)
def test_every_builtin_loss_passes(loss, output):
    r = fnn.check_derivation(L.get(loss), output=output)
    assert r.ok, str(r)
    assert {c.against for c in r.comparisons} == {
        "∂E/∂u: jax.grad",
        "∂E/∂u: finite diff.",
        "∂E/∂y: jax.grad",
        "∂E/∂y: finite diff.",
    }


def test_tanh_derivative_written_as_one_minus_h_is_caught():
    wrong = fnn.Activation("tanh?", jnp.tanh, lambda z, h: 1 - h)  # the right one is 1 − h²
    r = fnn.check_derivation(wrong)
    assert not r.ok
    assert "WRONG" in r.verdict and "at z = " in r.verdict and "yours" in r.verdict
    # the report says where: every regime disagrees, near 0 included (f'(0.5) = 0.786, 1 − h = 0.538)
    by = dict(r.comparisons[0].by_regime)
    assert by["|z| ≤ 3"] > 0.1
    assert "WRONG" in str(r).splitlines()[2]


def test_a_small_error_is_caught_by_jax_grad():
    subtle = fnn.Activation("sigmoid?", A.sigmoid, lambda z, h: h * (1 - h) * (1 + 1e-6 * z))
    r = fnn.check_derivation(subtle)
    assert not r.ok and r.comparisons[0].worst > 1e-6


def test_wrong_cross_entropy_delta_is_caught_on_unnormalised_rows():
    # δ = softmax(z) − y is right only for rows that sum to 1 (issue 11's bug); the grid has other rows
    wrong = fnn.Loss("ce?", L._ce_fn, lambda z, y: A.softmax(z) - y, on="logits", outputs=("softmax",), targets="classes")
    assert not fnn.check_derivation(wrong).ok


def test_huber_right_and_wrong():
    assert fnn.check_derivation(HUBER).ok
    wrong = fnn.Loss("huber?", huber_fn, lambda h, y: h - y)  # forgot the clip: wrong where |h − y| > 1
    r = fnn.check_derivation(wrong)
    assert not r.ok and "|u| ~ 0.1" in str(r)
    assert dict(r.comparisons[0].by_regime)["|u| ~ 30"] > 0.5  # far from the targets: off by |h − y| − 1


def test_kinks_are_left_out_and_one_sided_conventions_pass():
    r = fnn.check_derivation(fnn.activations.get("relu"))  # kinks=True: z = 0 left out
    assert r.ok and r.skipped >= 1
    abs_act = fnn.Activation("abs", jnp.abs, lambda z, h: jnp.sign(z))
    assert fnn.check_derivation(abs_act, kinks=[0.0]).ok
    shifted = fnn.Activation("relu1", lambda z: jnp.maximum(z - 1, 0), lambda z, h: (z > 1).astype(z.dtype))
    assert fnn.check_derivation(shifted, kinks=[1.0]).ok


def test_numpy_inside_f_is_refused_and_a_non_differentiable_f_falls_back_to_finite_differences():
    np_tanh = fnn.Activation("np_tanh", lambda z: jnp.asarray(np.tanh(np.asarray(z))), lambda z, h: 1 - h**2)
    with pytest.raises(TypeError, match="cannot be traced by JAX.*jax.numpy"):
        fnn.check_derivation(np_tanh)

    def host_tanh(z):  # traceable (a host callback) but not differentiable by jax.grad
        return jax.pure_callback(np.tanh, jax.ShapeDtypeStruct(z.shape, z.dtype), z, vmap_method="broadcast_all")

    r = fnn.check_derivation(fnn.Activation("host_tanh", host_tanh, lambda z, h: 1 - h**2))
    assert r.ok and [c.against for c in r.comparisons] == ["finite differences"] and "jax.grad of f failed" in r.notes[0]


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"obj": "tanh"}, TypeError, "`obj` must be an fnn.Activation or an fnn.Loss"),
        ({"obj": SWISH, "kinks": "x"}, TypeError, "`kinks` must be a sequence of numbers"),
        ({"obj": SWISH, "kinks": [np.inf]}, ValueError, "`kinks` must be finite"),
        ({"obj": SWISH, "output": "sigmoid"}, TypeError, "`output` applies to a loss"),
        ({"obj": fnn.activations.get("softmax")}, ValueError, "not elementwise"),
    ],
)
def test_check_derivation_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        fnn.check_derivation(**kwargs)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"name": "", "fn": huber_fn, "grad": huber_grad}, TypeError, "Loss `name`"),
        ({"name": "h", "fn": 3, "grad": huber_grad}, TypeError, "Loss `fn` must be a function"),
        ({"name": "h", "fn": huber_fn, "grad": huber_grad, "on": "z"}, ValueError, "Loss `on` must be one of"),
        ({"name": "h", "fn": huber_fn, "grad": huber_grad, "targets": "ints"}, ValueError, "Loss `targets` must be one of"),
        ({"name": "h", "fn": huber_fn, "grad": huber_grad, "outputs": [1]}, TypeError, "Loss `outputs`"),
    ],
)
def test_loss_record_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        fnn.Loss(**kwargs)


def test_activation_record_needs_its_derivative():
    with pytest.raises(TypeError, match="needs `df`"):
        fnn.Activation("swish", swish_f)
    with pytest.raises(TypeError, match="`f` must be a function"):
        fnn.Activation("swish", 1.0, swish_df)


# ---- on first use: a wrong derivative is refused by default; warn and off on request -----------------


def _wrong_tanh(name="tanh!"):
    return fnn.Activation(name, jnp.tanh, lambda z, h: 1 - h)  # tanh' = 1 − h², not 1 − h


def test_the_default_is_raise_and_a_wrong_activation_is_refused_with_how_to_turn_it_off():
    assert fnn.check.on_first_use().mode == "raise"
    bad = _wrong_tanh()
    with pytest.raises(ValueError) as info:
        fnn.MLP((2, 3, 1), hidden=bad)
    msg = str(info.value)
    assert msg.startswith("`hidden`: activation 'tanh!': the hand-derived derivative is WRONG: vs jax.grad")
    assert "vs finite differences" in msg and "wrong gradient" in msg
    assert 'fnn.check.on_first_use("warn")' in msg and '"off"' in msg and "`with` block" in msg
    with pytest.raises(ValueError, match="activation 'tanh!'"):  # refused at every use, not only the first
        fnn.MLP((2, 5, 1), hidden=bad)
    with pytest.raises(ValueError, match="`output`: activation 'tanh!'"):
        fnn.MLP((2, 3, 1), hidden="tanh", output=bad)


def test_a_wrong_loss_is_refused_by_default():
    bad = fnn.Loss("huber!", huber_fn, lambda h, y: h - y)  # the unclipped residual: wrong beyond |r| = 1
    net = fnn.MLP((2, 3, 1), hidden="tanh")
    with pytest.raises(ValueError, match=r"loss 'huber!': the hand-derived derivative is WRONG.*on_first_use\(\"warn\"\)"):
        fnn.objective(net, bad)
    x, y = jnp.ones((4, 2)), jnp.ones((4, 1))
    with pytest.raises(ValueError, match="loss 'huber!'"):
        fnn.fit(net, net.init(jax.random.key(0)), (x, y), loss=bad, optimizer=optax.sgd(0.1), epochs=1, progress=False)


def test_warn_mode_warns_once_and_training_carries_on():
    bad = _wrong_tanh()
    with fnn.check.on_first_use("warn"):
        with pytest.warns(UserWarning, match=r"activation 'tanh!': the hand-derived derivative is WRONG.*wrong gradient"):
            net = fnn.MLP((2, 3, 1), hidden=bad)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fnn.MLP((2, 5, 1), hidden=bad)  # checked already: no second warning
            fnn.MLP((2, 3, 1), hidden=SWISH)  # a right one never warns
        x, y = jnp.ones((4, 2)), jnp.ones((4, 1))
        _, h = fnn.fit(net, net.init(jax.random.key(0)), (x, y), loss="mse", optimizer=optax.sgd(0.1), epochs=2, progress=False)
        assert len(h["loss"]) == 2
    assert fnn.check.on_first_use().mode == "raise"  # restored on leaving the block
    with pytest.raises(ValueError, match="activation 'tanh!'"):  # checked under "warn", still refused under "raise"
        fnn.MLP((2, 3, 1), hidden=bad)


def test_wrong_loss_warns_when_first_used_in_warn_mode():
    bad = fnn.Loss("huber!", huber_fn, lambda h, y: h - y)
    net = fnn.MLP((2, 3, 1), hidden="tanh")
    with fnn.check.on_first_use("warn"), pytest.warns(UserWarning, match="loss 'huber!'.*on_first_use"):
        fnn.objective(net, bad)


def test_off_mode_checks_nothing_and_the_record_is_checked_when_it_is_back_on(monkeypatch):
    calls = []
    monkeypatch.setattr(fnn.check.derivation, "check_derivation", lambda obj: calls.append(obj) or pytest.fail("checked"))
    bad = _wrong_tanh("tanh-off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fnn.check.on_first_use("off"):
            fnn.MLP((2, 3, 1), hidden=bad)
    assert calls == []
    monkeypatch.undo()
    with pytest.raises(ValueError, match="activation 'tanh-off'"):  # met while off: checked at its first use after
        fnn.MLP((2, 3, 1), hidden=bad)


def test_on_first_use_called_plainly_sets_the_mode_for_the_process_and_can_be_restored():
    before = fnn.check.on_first_use()
    assert (before.mode, before.previous) == ("raise", "raise") and repr(before) == "on_first_use('raise')"
    setting = fnn.check.on_first_use("warn")
    try:
        assert (setting.mode, setting.previous) == ("warn", "raise") and fnn.check.on_first_use().mode == "warn"
        with pytest.warns(UserWarning, match="activation 'tanh-plain'"):
            fnn.MLP((2, 3, 1), hidden=_wrong_tanh("tanh-plain"))
    finally:
        fnn.check.on_first_use(setting.previous)
    assert fnn.check.on_first_use().mode == "raise"
    with fnn.check.on_first_use("off"), fnn.check.on_first_use("warn"):  # nested blocks unwind in order
        assert fnn.check.on_first_use().mode == "warn"
    assert fnn.check.on_first_use().mode == "raise"


@pytest.mark.parametrize(
    "mode, err, match",
    [
        ("loud", ValueError, r"`mode` must be one of 'raise', 'warn', 'off', got 'loud'"),
        (True, TypeError, r"`mode` must be one of 'raise', 'warn', 'off', got bool: True"),
    ],
)
def test_on_first_use_refuses_a_bad_mode(mode, err, match):
    with pytest.raises(err, match=match):
        fnn.check.on_first_use(mode)
    assert fnn.check.on_first_use().mode == "raise"  # unchanged


def test_wrong_against_only_one_reference_warns_under_raise():
    """Only when both references call a derivative wrong is it refused: a function jax.grad cannot
    differentiate leaves finite differences alone, and their verdict is then a warning."""

    @jax.custom_jvp
    def opaque_tanh(z):
        return jnp.tanh(z)

    @opaque_tanh.defjvp
    def _(primals, tangents):  # jax.grad of it raises: one reference is missing
        raise NotImplementedError("no derivative")

    bad = fnn.Activation("opaque", opaque_tanh, lambda z, h: 1 - h)
    r = fnn.check_derivation(bad)
    assert [c.against for c in r.comparisons] == ["finite differences"] and not r.ok
    with pytest.warns(UserWarning, match="activation 'opaque'"):
        fnn.MLP((2, 3, 1), hidden=bad)


# ---- an activation that is not elementwise is refused --------------------------------------------


NOT_ELEMENTWISE = [
    ("unit-norm", lambda z: z / jnp.linalg.norm(z, axis=-1, keepdims=True)),  # a normalisation in disguise
    ("centred", lambda z: jnp.tanh(z - jnp.mean(z, axis=-1, keepdims=True))),
    ("shifted", lambda z: jnp.tanh(jnp.roll(z, 1, axis=-1))),
    ("batch-scaled", lambda z: z / z.shape[-1]),
]


@pytest.mark.parametrize("name, f", NOT_ELEMENTWISE, ids=[n for n, _ in NOT_ELEMENTWISE])
def test_an_activation_that_is_not_elementwise_is_refused(name, f):
    act = fnn.Activation(name, f, lambda z, h: jnp.ones_like(z))
    for mode in ("raise", "warn"):
        with fnn.check.on_first_use(mode), pytest.raises(ValueError) as info:
            fnn.MLP((4, 6, 2), hidden=act)
        msg = str(info.value)
        assert f"activation {name!r} is not elementwise" in msg, msg
        assert "f of the batch gives" in msg and "f of that entry alone" in msg
        assert 'output activation (output="softmax"), not a hidden one' in msg
    with pytest.raises(ValueError, match=f"activation {name!r} is not elementwise"):
        fnn.check_derivation(act)  # the explicit check says so too


def test_the_elementwise_check_would_see_the_normalisation_train_wrong(x64):
    """Why it is refused: with fnn's elementwise backward, a normalisation's gradients are wrong
    (against jax.grad of the same network), although its 'derivative' is written with care."""

    def f(z):
        return z / jnp.linalg.norm(z, axis=-1, keepdims=True)

    def df(z, h):  # the Jacobian's diagonal, ∂h_i/∂z_i = (1 − h_i²)/‖z‖: all an elementwise backward can use
        return (1 - h**2) / jnp.linalg.norm(z, axis=-1, keepdims=True)

    with fnn.check.on_first_use("off"):  # built unchecked: what the refusal prevents
        net = fnn.MLP((3, 5, 2), hidden=fnn.Activation("unit-norm", f, df))
    params = net.init(jax.random.key(0), jnp.float64)
    x = jax.random.normal(jax.random.key(1), (8, 3), jnp.float64)
    y = jax.random.normal(jax.random.key(2), (8, 2), jnp.float64)
    _, g_manual = fnn.manual_value_and_grad(net, "mse")(params, x, y)
    _, g_auto = fnn.autodiff_value_and_grad(net, "mse")(params, x, y)
    assert tree_rel_err(g_manual, g_auto) > 1e-2


def test_elementwise_user_activations_and_builtins_pass_the_check(x64):
    """Correct elementwise records, built-in or user-made (kinked, saturating, with parameters), pass
    the first-use check silently under the default."""
    abs_act = fnn.Activation("abs", jnp.abs, lambda z, h: jnp.where(z > 0, 1.0, -1.0), kinks=True)
    mish = fnn.Activation(
        "mish",
        lambda z: z * jnp.tanh(jax.nn.softplus(z)),
        lambda z, h: jnp.tanh(jax.nn.softplus(z)) + z * (1 - jnp.tanh(jax.nn.softplus(z)) ** 2) * sig(z),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for act in (SWISH, abs_act, mish, *(fnn.activations.get(n) for n in A.HIDDEN_NAMES)):
            fnn.MLP((2, 3, 1), hidden=act)
        for out in A.OUTPUT_NAMES:
            fnn.MLP((2, 3, 2), hidden="tanh", output=out)  # softmax too: built-ins are not checked
        for loss in (*L.LOSSES, HUBER):
            fnn.losses.get(loss)
    for act in (SWISH, abs_act, mish):
        assert fnn.check_derivation(act).ok


def test_builtins_are_builtin_and_user_made_are_not():
    assert all(fnn.activations.get(n).builtin for n in A.OUTPUT_NAMES) and all(L.get(n).builtin for n in L.LOSSES)
    look_alike = fnn.Activation("tanh", jnp.tanh, lambda z, h: 1 - h**2)
    assert not look_alike.builtin and look_alike != fnn.activations.get("tanh") and not HUBER.builtin
    assert look_alike.to_json() == {"name": "tanh", "custom": True}


# ---- user-made activation and loss through every entry point ------------------------------------


def _problem(dtype=jnp.float64, n=24):
    net = fnn.MLP((2, 6, 2), hidden=SWISH)
    params = net.init(jax.random.key(0), dtype)
    params = [{"W": p["W"], "b": 0.1 * jnp.ones_like(p["b"])} for p in params]
    x = jax.random.normal(jax.random.key(1), (n, 2), dtype)
    y = 3.0 * jnp.tanh(x @ jnp.array([[1.0, -2.0], [0.5, 1.5]], dtype))  # residuals on both sides of Huber's bend
    return net, params, x, y


def test_manual_backward_equals_autodiff_with_user_parts(x64):
    net, params, x, y = _problem()
    E1, g1 = jax.jit(fnn.manual_value_and_grad(net, HUBER))(params, x, y)
    E2, g2 = jax.jit(fnn.autodiff_value_and_grad(net, HUBER))(params, x, y)
    assert abs(float(E1 - E2)) <= 1e-12 * abs(float(E2)) and tree_rel_err(g1, g2) <= 1e-12
    # jax.grad routed through the hand-derived reverse pass: params, x and the float targets
    gv = jax.grad(fnn.with_manual_vjp(net, HUBER), argnums=(0, 1, 2))(params, x, y)
    ga = jax.grad(fnn.objective(net, HUBER), argnums=(0, 1, 2))(params, x, y)
    assert tree_rel_err(gv, ga) <= 1e-12
    pe = fnn.per_example_grads(net, params, x, y, loss=HUBER)
    ref = jax.vmap(lambda a, b: fnn.autodiff_value_and_grad(net, HUBER)(params, a, b)[1])(x, y)
    assert tree_rel_err(pe, ref) <= 1e-12
    r = fnn.compare_gradients(net, params, x, y, loss=HUBER)
    assert r.ok and r.max_autodiff_rel <= 1e-12, str(r)


def test_a_wrong_user_activation_shows_in_compare_gradients(x64):
    bad = fnn.Activation("swish?", swish_f, lambda z, h: sig(z))  # forgot the product rule's second term
    with fnn.check.on_first_use("warn"), pytest.warns(UserWarning):
        net = fnn.MLP((2, 6, 2), hidden=bad)
    _, params, x, y = _problem()
    assert not fnn.compare_gradients(net, params, x, y, loss=HUBER).ok


def test_fit_fit_many_evaluate_and_make_step_with_user_parts():
    net, params, x, y = _problem(jnp.float32, n=64)
    p, h = fnn.fit(net, params, (x, y), loss=HUBER, optimizer=optax.adam(0.05), epochs=150, progress=False)
    assert h["loss"][-1] < 0.3 * h["loss"][0]
    m = fnn.evaluate(net, p, x, y, loss=HUBER)
    # the reference, written without fnn in float64 numpy: h = swish(W⁽¹⁾x + b⁽¹⁾), ŷ = W⁽²⁾h + b⁽²⁾ (identity
    # output), Huber summed over the outputs and averaged over the batch
    P = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in p]
    z1 = np.asarray(x, np.float64) @ P[0]["W"].T + P[0]["b"]
    out = (z1 / (1 + np.exp(-z1))) @ P[1]["W"].T + P[1]["b"]
    r = np.abs(out - np.asarray(y, np.float64))
    want = np.mean(np.sum(np.where(r <= 1.0, 0.5 * r**2, r - 0.5), axis=-1))
    assert np.isclose(float(m["loss"]), want, rtol=1e-5) and (r > 1).any()  # residuals on both sides of the bend
    assert np.isnan(float(m["accuracy"]))  # real targets: no accuracy
    _, hm = fnn.fit_many(
        net, (x, y), loss=HUBER, optimizer=optax.adam(0.02), epochs=20, key=jax.random.key(3), num_networks=3, progress=False
    )
    assert hm["loss"].shape == (3, 20) and np.all(hm["loss"][:, -1] < hm["loss"][:, 0])
    step = fnn.make_step(net, HUBER, optax.sgd(0.1))
    state = step.init(params)
    state, metrics = step(state, x, y)
    assert np.isfinite(float(metrics["loss"]))


def test_classification_loss_of_your_own_reads_accuracy_from_its_target_form():
    ce = fnn.Loss("my_ce", L._ce_fn, L._ce_grad, on="logits", outputs=("softmax",), targets="classes")
    net = fnn.MLP((2, 8, 3), hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (10, 2))
    labels = jnp.arange(10) % 3
    mine, builtin = fnn.evaluate(net, params, x, labels, loss=ce), fnn.evaluate(net, params, x, labels, loss="cross_entropy")
    assert float(mine["loss"]) == pytest.approx(float(builtin["loss"]), rel=1e-6)
    assert float(mine["accuracy"]) == float(builtin["accuracy"])
    with pytest.raises(ValueError, match="loss 'my_ce' is defined for outputs \\['softmax'\\]"):
        fnn.evaluate(fnn.MLP((2, 3)), fnn.MLP((2, 3)).init(jax.random.key(0)), x, labels, loss=ce)


def test_checkpoint_of_a_user_activation_names_what_load_needs(tmp_path):
    net, params, _, _ = _problem(jnp.float32)
    path = fnn.save(tmp_path / "swish.npz", net, params, note="mine")
    with pytest.raises(fnn.CheckpointError, match=r"activation\(s\) \['swish'\] that you built.*activations=\{'swish'"):
        fnn.load(path)
    net2, params2, meta = fnn.load(path, activations={"swish": SWISH})
    assert net2 == net and meta == {"note": "mine"}
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params2)))
    with pytest.raises(TypeError, match=r"`activations\['swish'\]` must be an fnn.Activation"):
        fnn.load(path, activations={"swish": swish_f})


# ---- the public loss functions take the target forms fit takes ----------------------------------


def test_public_losses_accept_class_indices_and_name_bad_targets():
    z = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = jnp.array([0, 2])
    onehot = jax.nn.one_hot(labels, 3)
    assert float(L.cross_entropy(z, labels)) == pytest.approx(float(L.cross_entropy(z, onehot)))
    assert float(L.mse(z, labels)) == pytest.approx(float(L.mse(z, onehot)))
    assert float(L.bce(z[:, :1], jnp.array([1.0, 0.0]))) == pytest.approx(float(L.bce(z[:, :1], jnp.array([[1.0], [0.0]]))))
    with pytest.raises(ValueError, match="`y` has shape \\(3,\\)"):
        L.cross_entropy(z, jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="class indices for 3 classes"):
        L.cross_entropy(z, jnp.array([0, 3]))
