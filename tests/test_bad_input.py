"""The bad-input catalogue: each case asserts the exception type and that the message names the
offending argument and what was expected. Every check fires in Python, before JAX traces."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn

NET = fnn.MLP((2, 4, 3), hidden="tanh", output="softmax")
PARAMS = NET.init(jax.random.key(0))
X = jnp.ones((5, 2))
Y = jnp.array([0, 1, 2, 0, 1])


def _swap(layer, leaf, value):
    p = [dict(l) for l in PARAMS]
    p[layer][leaf] = value
    return p


SPEC_CASES = [
    # (id, callable, exception, message regex)
    (
        "unknown hidden",
        lambda: fnn.MLP((2, 3, 1), hidden="swish"),
        ValueError,
        "unknown activation 'swish'; valid names are identity, sigmoid, tanh",
    ),
    ("unknown output", lambda: fnn.MLP((2, 3, 1), output="sofmax"), ValueError, "unknown activation 'sofmax'.*softmax"),
    (
        "softmax hidden",
        lambda: fnn.MLP((2, 3, 1), hidden="softmax"),
        ValueError,
        "`hidden` activation 'softmax' is only valid for the output layer",
    ),
    ("sizes too short", lambda: fnn.MLP((2,)), ValueError, r"`sizes` needs at least 2 entries \(inputs, outputs\), got \(2,\)"),
    ("size zero", lambda: fnn.MLP((2, 0, 1)), ValueError, r"`sizes` entries must be positive, got \(2, 0, 1\)"),
    ("size negative", lambda: fnn.MLP((2, -3, 1)), ValueError, "`sizes` entries must be positive"),
    ("size float", lambda: fnn.MLP((2, 3.5, 1)), TypeError, r"`sizes` must hold ints.*entry 3.5"),
    ("sizes a string", lambda: fnn.MLP("2,3,1"), TypeError, "`sizes` must be a sequence of ints"),
    (
        "hidden count",
        lambda: fnn.MLP((2, 3, 3, 1), hidden=("relu",)),
        ValueError,
        r"`hidden` has 1 activations but sizes \(2, 3, 3, 1\) has 2 hidden layers",
    ),
    (
        "unknown init",
        lambda: fnn.MLP((2, 3, 1), init="orthogonal"),
        ValueError,
        "unknown initialiser 'orthogonal'; valid names are auto",
    ),
    ("init key not a key", lambda: NET.init(0), TypeError, r"`key` must be a single jax.random.key\(seed\)"),
    (
        "init key batch",
        lambda: NET.init(jax.random.split(jax.random.key(0), 2)),
        TypeError,
        "`key` must be a single jax.random.key",
    ),
    ("init int dtype", lambda: NET.init(jax.random.key(0), jnp.int32), TypeError, "`dtype` must be a float dtype, got int32"),
]

FORWARD_CASES = [
    (
        "x wrong features",
        lambda: NET.apply(PARAMS, jnp.ones((5, 3))),
        ValueError,
        r"`x` has 3 features \(shape \(5, 3\)\) but the network expects 2",
    ),
    ("x transposed", lambda: NET.apply(PARAMS, jnp.ones((2, 5))), ValueError, r"x looks transposed: pass x.T, of shape \(5, 2\)"),
    (
        "x rank 3",
        lambda: NET.apply(PARAMS, jnp.ones((4, 5, 2))),
        ValueError,
        r"`x` must be a batch \(B, 2\) or one example \(2,\), got shape \(4, 5, 2\); use jax.vmap",
    ),
    (
        "x scalar",
        lambda: NET.apply(PARAMS, jnp.float32(1.0)),
        ValueError,
        r"`x` must be a batch \(B, 2\) or one example \(2,\), got shape \(\)",
    ),
    (
        "x int",
        lambda: NET.apply(PARAMS, jnp.ones((5, 2), jnp.int32)),
        TypeError,
        r"`x` has dtype int32; the network needs floats: cast it",
    ),
    ("x bool", lambda: NET.apply(PARAMS, jnp.ones((5, 2), bool)), TypeError, "`x` has dtype bool; the network needs floats"),
    ("x a string", lambda: NET.apply(PARAMS, "data"), TypeError, "`x` must be an array"),
    ("x ragged list", lambda: NET.apply(PARAMS, [[1.0, 2.0], [1.0]]), TypeError, "`x` must be a rectangular array"),
    ("params not a list", lambda: NET.apply({"W": 1}, X), TypeError, "`params` must be a list of 2 layers"),
    (
        "params too few layers",
        lambda: NET.apply(PARAMS[:1], X),
        ValueError,
        r"`params` has 1 layers but MLP\(sizes=\(2, 4, 3\).* has 2 \(params from a different network\?\)",
    ),
    (
        "params wrong W shape",
        lambda: NET.apply(_swap(1, "W", jnp.ones((3, 5))), X),
        ValueError,
        r"`params\[1\]\['W'\]` has shape \(3, 5\) but layer 1 of .* expects \(3, 4\)",
    ),
    (
        "params wrong b shape",
        lambda: NET.apply(_swap(0, "b", jnp.ones(3)), X),
        ValueError,
        r"`params\[0\]\['b'\]` has shape \(3,\) but layer 0 .* expects \(4,\)",
    ),
    (
        "params missing leaf",
        lambda: NET.apply([{"W": PARAMS[0]["W"]}, PARAMS[1]], X),
        ValueError,
        r"`params\[0\]` must be a dict with keys 'W' and 'b', got \['W'\]",
    ),
    (
        "params int leaf",
        lambda: NET.apply(_swap(0, "b", jnp.zeros(4, jnp.int32)), X),
        TypeError,
        r"`params\[0\]\['b'\]` has dtype int32; parameters must be floats",
    ),
    (
        "params from other net",
        lambda: NET.apply(fnn.MLP((2, 5, 3)).init(jax.random.key(0)), X),
        ValueError,
        r"`params\[0\]\['W'\]` has shape \(5, 2\) but layer 0 .* expects \(4, 2\)",
    ),
]

LOSS_CASES = [
    (
        "unknown loss",
        lambda: fnn.manual_value_and_grad(NET, "hinge"),
        ValueError,
        "unknown loss 'hinge'; valid names are mse, cross_entropy, bce",
    ),
    ("loss not a str", lambda: fnn.objective(NET, None), TypeError, "`loss` must be a name"),
    (
        "ce without softmax",
        lambda: fnn.manual_value_and_grad(fnn.MLP((2, 3)), "cross_entropy"),
        ValueError,
        "loss 'cross_entropy' needs output='softmax'.*output is 'identity'",
    ),
    (
        "bce without sigmoid",
        lambda: fnn.autodiff_value_and_grad(NET, "bce"),
        ValueError,
        "loss 'bce' needs output='sigmoid'.*output is 'softmax'",
    ),
    ("net not an MLP", lambda: fnn.manual_value_and_grad("net", "mse"), TypeError, "`net` must be an fnn.MLP"),
    (
        "y float class labels",
        lambda: fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, X, Y.astype(jnp.float32)),
        ValueError,
        "cast class indices to int",
    ),
    (
        "y out of range",
        lambda: fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, X, jnp.array([0, 1, 2, 3, 0])),
        ValueError,
        "class indices for 3 classes, but its values span",
    ),
    (
        "y one-hot width",
        lambda: fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, X, jnp.eye(4)[Y]),
        ValueError,
        "one-hot width 4 but the network has 3 outputs",
    ),
    (
        "y batch length",
        lambda: fnn.autodiff_value_and_grad(NET, "cross_entropy")(PARAMS, X, Y[:4]),
        ValueError,
        r"`y` has shape \(4,\) but `x` is a batch of 5",
    ),
    (
        "y scalar for batch",
        lambda: fnn.objective(NET, "cross_entropy")(PARAMS, X, jnp.array(1)),
        ValueError,
        r"`y` has shape \(\) but `x` is a batch of 5",
    ),
    (
        "empty batch",
        lambda: fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, jnp.ones((0, 2)), jnp.zeros(0, int)),
        ValueError,
        "`x` is an empty batch",
    ),
    (
        "mse bad target shape",
        lambda: fnn.manual_value_and_grad(NET, "mse")(PARAMS, X, jnp.ones((5, 2))),
        ValueError,
        r"loss 'mse' expects targets of shape \(5, 3\)",
    ),
    (
        "bce targets out of [0,1]",
        lambda: fnn.manual_value_and_grad(fnn.MLP((2, 1), output="sigmoid"), "bce")(
            fnn.MLP((2, 1), output="sigmoid").init(jax.random.key(0)), X, jnp.full(5, 2.0)
        ),
        ValueError,
        r"targets in \[0, 1\]",
    ),
    (
        "poisson targets below 0",
        lambda: fnn.manual_value_and_grad(fnn.MLP((2, 1), output="exp"), "poisson")(
            fnn.MLP((2, 1), output="exp").init(jax.random.key(0)), X, jnp.full(5, -1.0)
        ),
        ValueError,
        r"`y` must be non-negative targets \(counts or rates\)",
    ),
    (
        "poisson without exp",
        lambda: fnn.autodiff_value_and_grad(fnn.MLP((2, 1)), "poisson"),
        ValueError,
        "loss 'poisson' needs output='exp'.*output is 'identity'",
    ),
    (
        "custom_vjp checks too",
        lambda: fnn.with_manual_vjp(NET, "cross_entropy")(PARAMS, jnp.ones((5, 3)), Y),
        ValueError,
        "`x` has 3 features",
    ),
]


def _step_call(x):
    step = fnn.make_step(NET, "cross_entropy")
    return step(step.init(PARAMS), x, Y)


def _fit(**kw):
    args = {"loss": "cross_entropy", "epochs": 1, "progress": False, **kw}
    return fnn.fit(NET, args.pop("params", PARAMS), args.pop("data", (X, Y)), **args)


def _many(**kw):
    args = {"loss": "cross_entropy", "epochs": 1, "key": jax.random.key(0), "progress": False, "optimizer": OPT_H, **kw}
    return fnn.fit_many(NET, (X, Y), **args)


def _ax():
    return fnn.plot.subplots()[1]


def _heatmap(values):
    return fnn.plot.heatmap(_ax(), values, xticks=["a", "b"], yticks=[1, 2])


def _boundary(**kw):
    args = {
        "net": NET,
        "params": PARAMS,
        "x": np.linspace(-1, 1, 12).reshape(6, 2),
        "y": np.array([0, 1, 2, 0, 1, 2]),
        "resolution": 10,
        **kw,
    }
    return fnn.plot.decision_boundary(_ax(), args.pop("net"), args.pop("params"), args.pop("x"), args.pop("y"), **args)


LIN = fnn.MLP((2, 1))
_step = fnn.make_step(NET, "cross_entropy")
_STATE = _step.init(PARAMS)
OPT_H = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
TRAIN_CASES = [
    (
        "make_step unknown grad",
        lambda: fnn.make_step(NET, "cross_entropy", grad="fd"),
        ValueError,
        "`grad` must be 'manual' or 'autodiff', got 'fd'",
    ),
    (
        "make_step number as optimizer",
        lambda: fnn.make_step(NET, "cross_entropy", optimizer=0.1),
        TypeError,
        "`optimizer` must be an optax.GradientTransformation .* got float",
    ),
    (
        "step.init params of another net",
        lambda: fnn.make_step(NET, "cross_entropy").init(fnn.MLP((2, 5, 3)).init(jax.random.key(0))),
        ValueError,
        r"`params\[0\]\['W'\]` has shape \(5, 2\)",
    ),
    ("step x wrong features", lambda: _step_call(jnp.ones((5, 3))), ValueError, "`x` has 3 features"),
    (
        "fit epochs zero",
        lambda: fnn.fit(NET, PARAMS, (X, Y), loss="cross_entropy", epochs=0),
        ValueError,
        r"`epochs` must be an int in \[1, 2147483647\], got 0",
    ),
    (
        "fit labels as floats",
        lambda: fnn.fit(NET, PARAMS, (X, Y.astype(float)), loss="cross_entropy", epochs=1),
        ValueError,
        "cast class indices to int",
    ),
    (
        "fit string batch size",
        lambda: fnn.fit(NET, PARAMS, (X, Y), loss="cross_entropy", epochs=1, batch_size="32"),
        TypeError,
        "`batch_size` must be an int >= 1, got str",
    ),
    (
        "fit grad_norms not a bool",
        lambda: fnn.fit(NET, PARAMS, (X, Y), loss="cross_entropy", epochs=1, grad_norms="yes"),
        TypeError,
        "`grad_norms` must be True or False, got str: 'yes'",
    ),
    (
        "fit inf in x",
        lambda: fnn.fit(NET, PARAMS, (X.at[3, 0].set(jnp.inf), Y), loss="cross_entropy", epochs=1),
        ValueError,
        r"`data\[0\]` contains NaN or inf \(first at row 3",
    ),
    (
        "fit_many params not stacked",
        lambda: fnn.fit_many(NET, (X, Y), loss="cross_entropy", epochs=1, key=jax.random.key(0), params=PARAMS),
        ValueError,
        "`params` must be stacked over a leading network axis",
    ),
    (
        "fit_many zero networks",
        lambda: fnn.fit_many(NET, (X, Y), loss="cross_entropy", epochs=1, key=jax.random.key(0), num_networks=0),
        ValueError,
        r"`num_networks` must be an int in \[1, inf\), got 0",
    ),
    (
        "fit_many without key",
        lambda: fnn.fit_many(NET, (X, Y), loss="cross_entropy", epochs=1, key=None, num_networks=2),
        TypeError,
        "`key` must be a single jax.random.key",
    ),
    (
        "fit_many 2-D hyperparameter",
        lambda: fnn.fit_many(
            NET,
            (X, Y),
            loss="cross_entropy",
            epochs=1,
            key=jax.random.key(0),
            optimizer=OPT_H,
            hyperparams={"learning_rate": jnp.ones((2, 2))},
        ),
        ValueError,
        r"`hyperparams\['learning_rate'\]` must be a 1-D array",
    ),
    (
        "fit_many unknown hyperparameter",
        lambda: fnn.fit_many(
            NET, (X, Y), loss="cross_entropy", epochs=1, key=jax.random.key(0), optimizer=OPT_H, hyperparams={"lr": jnp.ones(2)}
        ),
        ValueError,
        r"`hyperparams` names \['lr'\] are not hyperparameters",
    ),
    (
        "per-example grads of one example",
        lambda: fnn.per_example_grads(NET, PARAMS, jnp.ones(2), jnp.array(0), loss="cross_entropy"),
        ValueError,
        r"`x` must be a batch \(B, 2\) for per-example gradients",
    ),
    (
        "per-example grads bad grad",
        lambda: fnn.per_example_grads(NET, PARAMS, X, Y, grad="x", loss="cross_entropy"),
        ValueError,
        "`grad` must be 'manual' or 'autodiff'",
    ),
    (
        "evaluate NaN in x",
        lambda: fnn.evaluate(NET, PARAMS, X.at[1, 1].set(jnp.nan), Y, loss="cross_entropy"),
        ValueError,
        r"`x` contains NaN or inf \(first at row 1",
    ),
    (
        "compare_gradients inf in x",
        lambda: fnn.compare_gradients(NET, PARAMS, X.at[1, 1].set(jnp.inf), Y, loss="cross_entropy"),
        ValueError,
        "`x` contains NaN or inf",
    ),
    (
        "compare_gradients wrong loss",
        lambda: fnn.compare_gradients(NET, PARAMS, X, Y, loss="bce"),
        ValueError,
        "loss 'bce' needs output='sigmoid'",
    ),
    (
        "backward wrong delta",
        lambda: fnn.backward_pass(NET, PARAMS, NET.forward(PARAMS, X)[1], jnp.ones((5, 2))).grads,
        ValueError,
        r"`delta_out` has shape \(5, 2\) but the output z has shape \(5, 3\)",
    ),
    (
        "fold_affine params of another net",
        lambda: fnn.fold_affine(fnn.MLP((2, 3, 1), hidden="identity"), PARAMS),
        ValueError,
        r"`params\[0\]\['W'\]` has shape \(4, 2\)",
    ),
]

DATA_CASES = [
    ("circles n = 0", lambda: fnn.datasets.circles(jax.random.key(0), 0), ValueError, "`n` must be an int >= 1, got 0"),
    (
        "moons negative noise",
        lambda: fnn.datasets.moons(jax.random.key(0), 10, noise=-1.0),
        ValueError,
        "`noise` must be a finite number >= 0, got -1.0",
    ),
    (
        "spirals one class",
        lambda: fnn.datasets.spirals(jax.random.key(0), 10, classes=1),
        ValueError,
        "`classes` must be an int >= 2, got 1",
    ),
    ("spirals key is an int", lambda: fnn.datasets.spirals(3, 10), TypeError, "`key` must be a single jax.random.key"),
    (
        "mnist missing folder",
        lambda: fnn.datasets.mnist("/nonexistent/mnist"),
        FileNotFoundError,
        r"'/nonexistent/mnist' does not exist; expected a folder holding the MNIST IDX files \(train-images-idx3-ubyte",
    ),
    (
        "split fraction above 1",
        lambda: fnn.datasets.train_test_split(jax.random.key(0), X, Y, test_fraction=1.5),
        ValueError,
        r"`test_fraction` must be a number in \(0, 1\), got 1.5",
    ),
    ("save a string as net", lambda: fnn.save("unused.npz", "net", PARAMS), TypeError, "`net` must be an fnn.MLP, got str"),
    (
        "save unserialisable metadata",
        lambda: fnn.save("unused.npz", NET, PARAMS, when=object()),
        TypeError,
        r"metadata\['when'\] is a object .* not JSON-serialisable",
    ),
    (
        "save into a missing folder",
        lambda: fnn.save("/nonexistent/dir/x.npz", NET, PARAMS),
        FileNotFoundError,
        "directory '/nonexistent/dir' does not exist",
    ),
    ("load a missing file", lambda: fnn.load("/nonexistent/x.npz"), FileNotFoundError, "no checkpoint at '/nonexistent/x.npz'"),
    (
        "save params of another net",
        lambda: fnn.save("unused.npz", NET, fnn.MLP((2, 5, 3)).init(jax.random.key(0))),
        ValueError,
        r"`params\[0\]\['W'\]` has shape \(5, 2\)",
    ),
    (
        "data_mesh given a string",
        lambda: fnn.data_mesh("cpu"),
        TypeError,
        "`devices` must be a list of jax.Device .* got str: 'cpu'",
    ),
    (
        "fit mesh without data axis",
        lambda: fnn.fit(
            NET, PARAMS, (X, Y), loss="cross_entropy", epochs=1, mesh=jax.sharding.Mesh(np.asarray(jax.devices()), ("batch",))
        ),
        ValueError,
        "`mesh` needs an axis named 'data'",
    ),
]


HUGE = fnn.MLP((2, 2**40, 1))  # 8 TiB of float32 parameters: no machine holds them
KEY = jax.random.key(0)
STACKED = jax.vmap(NET.init)(jax.random.split(KEY, 3))
TANH = (fnn.activations.tanh, fnn.activations.tanh_grad)

# Bugs the fuzzer (tools/fuzz_api.py) found, one case each: what used to escape as a JAX, NumPy or
# Python-internal error (or an abort), or pass silently, now refused in Python, naming the argument.
FUZZ_CASES = [
    ("MLP hidden not a name", lambda: fnn.MLP((2, 3, 1), hidden=[1]), TypeError, r"`hidden\[0\]`: activation must be a name"),
    ("MLP unknown output", lambda: fnn.MLP((2, 3, 1), output="bogus"), ValueError, "`output`: unknown activation 'bogus'"),
    ("MLP init not a name", lambda: fnn.MLP((2, 3, 1), init=None), ValueError, "`init`: unknown initialiser None"),
    (
        "init dtype not a dtype",
        lambda: NET.init(KEY, "bogus"),
        TypeError,
        "`dtype` must be a float dtype such as jnp.float32, got 'bogus'",
    ),
    ("init dtype an array", lambda: NET.init(KEY, jnp.ones(2)), TypeError, "`dtype` must be a float dtype"),
    (
        "init beyond memory",
        lambda: HUGE.init(KEY),
        ValueError,
        r"the parameters of 1 network\(s\) with `sizes` \(2, 1099511627776, 1\) would take",
    ),
    (
        "fit_many networks beyond memory",
        lambda: fnn.fit_many(NET, (X, Y), loss="cross_entropy", epochs=1, key=KEY, num_networks=2**40),
        ValueError,
        "the parameters of 1099511627776 network",
    ),
    ("from_json not a dict", lambda: fnn.MLP.from_json("net"), TypeError, "`d` must be the dict of MLP.to_json"),
    (
        "from_json unknown activation",
        lambda: fnn.MLP.from_json({**NET.to_json(), "output": {"name": "bogus"}}),
        ValueError,
        "`d` is not an fnn MLP spec.*unknown activation 'bogus'",
    ),
    ("from_json activations a list", lambda: fnn.MLP.from_json(NET.to_json(), [1]), TypeError, "`activations` must map names"),
    ("fold_affine net not an MLP", lambda: fnn.fold_affine("net", PARAMS), TypeError, "`net` must be an fnn.MLP, got str"),
    (
        "backward net not an MLP",
        lambda: fnn.backward_pass({}, PARAMS, None, None),
        TypeError,
        "`net` must be an fnn.MLP, got dict",
    ),
    (
        "backward cache not a Cache",
        lambda: fnn.backward_pass(NET, PARAMS, None, jnp.ones((5, 3))),
        TypeError,
        "`cache` must be the Cache",
    ),
    (
        "backward stacked params",
        lambda: fnn.backward_pass(NET, STACKED, NET.forward(PARAMS, X)[1], jnp.ones((5, 3))),
        ValueError,
        "these look like the stacked parameters of 3 networks",
    ),
    (
        "backward cache of another batch",
        lambda: fnn.backward_pass(NET, PARAMS, NET.forward(PARAMS, X[:2])[1], jnp.ones((5, 3))),
        ValueError,
        r"`delta_out` has shape \(5, 3\) but the output z has shape \(2, 3\)",
    ),
    (
        "backward input_grad not a bool",
        lambda: fnn.backward_pass(NET, PARAMS, NET.forward(PARAMS, X)[1], jnp.ones((5, 3)), input_grad="yes"),
        TypeError,
        "`input_grad` must be True or False",
    ),
    (
        "params a mappingproxy",
        lambda: NET.apply([__import__("types").MappingProxyType(l) for l in PARAMS], X),
        TypeError,
        r"`params\[0\]` is a mappingproxy",
    ),
    (
        "autodiff of mappingproxy params",
        lambda: fnn.autodiff_value_and_grad(NET, "cross_entropy")(
            [__import__("types").MappingProxyType(l) for l in PARAMS], X, Y
        ),
        TypeError,
        r"`params\[0\]` is a mappingproxy",
    ),
    (
        "with_manual_vjp targets of objects",
        lambda: fnn.with_manual_vjp(NET, "cross_entropy")(PARAMS, X, np.array([0, 1, 2, 0, 1], dtype=object)),
        TypeError,
        "`y` must hold numbers, got dtype object",
    ),
    ("x a key array", lambda: NET.apply(PARAMS, KEY), TypeError, "`x` must be an array of numbers, got a jax.random key array"),
    (
        "x abstract",
        lambda: fnn.evaluate(NET, PARAMS, jax.ShapeDtypeStruct((5, 2), jnp.float32), Y, loss="mse"),
        TypeError,
        "`x` must be an array with values",
    ),
    (
        "one-hot rows with inf",
        lambda: fnn.evaluate(NET, PARAMS, X, jnp.eye(3)[Y].at[0, 0].set(jnp.inf), loss="cross_entropy"),
        ValueError,
        "`y` must be non-negative rows.*holds NaN or inf",
    ),
    (
        "bce targets with NaN",
        lambda: fnn.losses.bce(jnp.zeros((2, 1)), jnp.array([0.0, jnp.nan])),
        ValueError,
        r"`y` must be targets in \[0, 1\], but it holds NaN or inf",
    ),
    ("loss function of strings", lambda: fnn.losses.mse(["a", "b"], [1.0, 2.0]), TypeError, "`yhat` must hold real numbers"),
    ("loss function of None", lambda: fnn.losses.cross_entropy(None, [0]), TypeError, "`logits` must be an array of numbers"),
    (
        "Loss outputs not names",
        lambda: fnn.Loss("l", lambda u, y: u, lambda u, y: u, outputs=5),
        TypeError,
        "Loss `outputs` must be activation names",
    ),
    (
        "Activation params unhashable",
        lambda: fnn.Activation("a", *TANH, params=(("a", [1]),)),
        TypeError,
        "Activation `params` must be",
    ),
    (
        "accuracy kind unknown",
        lambda: fnn.metrics.accuracy("bogus", jnp.ones((2, 2)), jnp.ones((2, 2))),
        ValueError,
        "`kind` must be 'argmax', 'threshold' or None",
    ),
    (
        "accuracy shapes differ",
        lambda: fnn.metrics.accuracy("argmax", jnp.ones((5, 3)), jnp.ones((5, 1))),
        ValueError,
        r"`out` has shape \(5, 3\) but `t` has \(5, 1\)",
    ),
    (
        "accuracy_kind n_out not an int",
        lambda: fnn.metrics.accuracy_kind("mse", [0, 1], None),
        TypeError,
        "`n_out` must be an int",
    ),
    (
        "layer_norms without W",
        lambda: fnn.metrics.layer_norms([{"b": jnp.ones(2)}]),
        TypeError,
        r"`tree\[0\]` must be a dict with an array 'W'",
    ),
    ("all_finite of a string", lambda: fnn.metrics.all_finite([{"W": "W"}]), TypeError, "`tree` must hold arrays of numbers"),
    ("unit_health net not an MLP", lambda: fnn.metrics.unit_health(None, PARAMS, X), TypeError, "`net` must be an fnn.MLP"),
    ("ensemble net not an MLP", lambda: fnn.sweep.size(None, STACKED), TypeError, "`net` must be an fnn.MLP"),
    (
        "ensemble.best empty mode",
        lambda: fnn.sweep.best(NET, STACKED, {"loss": np.ones((3, 2)), "epochs_run": np.full(3, 2)}, "loss", mode=""),
        ValueError,
        "`mode` must be 'min' or 'max', got ''",
    ),
    (
        "ensemble.best history of strings",
        lambda: fnn.sweep.best(NET, STACKED, {"loss": np.full((3, 2), "a"), "epochs_run": np.full(3, 2)}, "loss"),
        TypeError,
        r"`history\['loss'\]` must hold numbers",
    ),
    (
        "ensemble.best epochs_run of 2 for 3 networks",
        lambda: fnn.sweep.best(NET, STACKED, {"loss": np.ones((3, 2)), "epochs_run": np.full(2, 2)}, "loss"),
        ValueError,
        r"`history\['epochs_run'\]` must hold one int per network \(3\)",
    ),
    (
        "moons noise a string",
        lambda: fnn.datasets.moons(KEY, 10, noise="0.1"),
        TypeError,
        "`noise` must be a real number >= 0, got str",
    ),
    (
        "moons noise a bool",
        lambda: fnn.datasets.moons(KEY, 10, noise=True),
        TypeError,
        "`noise` must be a real number >= 0, got bool",
    ),
    ("moons beyond memory", lambda: fnn.datasets.moons(KEY, 2**40), ValueError, "`n` = 1099511627776 points would take"),
    (
        "blobs classes beyond int32",
        lambda: fnn.datasets.blobs(KEY, 10, classes=2**40),
        ValueError,
        r"`classes` must be at most 2147483647",
    ),
    (
        "blobs complex centers",
        lambda: fnn.datasets.blobs(KEY, 10, centers=np.ones((2, 2), complex)),
        TypeError,
        "`centers` must hold real numbers",
    ),
    (
        "blobs string centers",
        lambda: fnn.datasets.blobs(KEY, 10, centers=[["a", "b"], ["c", "d"]]),
        TypeError,
        "`centers` must hold real numbers",
    ),
    ("mnist1d seed past 2**32", lambda: fnn.datasets.mnist1d(2**40, 20), ValueError, r"`seed` must be below 2\*\*32"),
    (
        "mnist1d beyond memory",
        lambda: fnn.datasets.mnist1d(0, 2**40),
        ValueError,
        "`num_samples` = 1099511627776 sequences would take",
    ),
    ("mnist empty path", lambda: fnn.datasets.mnist(""), ValueError, "`path` is empty"),
    (
        "standardize negative eps",
        lambda: fnn.preprocessing.standardize(np.ones((3, 2)), eps=-1.0),
        ValueError,
        "`eps` must be a finite number > 0.0, got -1.0",
    ),
    (
        "standardize eps a string",
        lambda: fnn.preprocessing.standardize(np.ones((3, 2)), eps="x"),
        TypeError,
        "`eps` must be a real number",
    ),
    (
        "standardize strings",
        lambda: fnn.preprocessing.standardize(np.array([["a"]])),
        TypeError,
        "`x_train` must hold real numbers",
    ),
    (
        "split stratify a string",
        lambda: fnn.preprocessing.train_test_split(KEY, X, Y, stratify="yes"),
        TypeError,
        "`stratify` must be True or False",
    ),
    (
        "one_hot beyond int32",
        lambda: fnn.preprocessing.one_hot(jnp.array([0]), 2**63),
        ValueError,
        "`num_classes` must be at most 2147483647",
    ),
    (
        "one_hot beyond memory",
        lambda: fnn.preprocessing.one_hot(jnp.zeros(2**12, int), 2**30),
        ValueError,
        "labels of `num_classes` = 1073741824 would take",
    ),
    (
        "permutation of -1",
        lambda: fnn.shuffle.permutation(KEY, -1),
        ValueError,
        r"`n` must be an int in \[0, 2147483647\], got -1",
    ),
    ("permutation of a float", lambda: fnn.shuffle.permutation(KEY, 2.5), TypeError, "`n` must be an int >= 0, got float"),
    ("permutation key an int", lambda: fnn.shuffle.permutation(0, 5), TypeError, "`key` must be a single jax.random.key"),
    ("rounds of -1", lambda: fnn.shuffle.rounds(-1), ValueError, "`n` must be an int in"),
    (
        "compare_gradients rtol a string",
        lambda: fnn.compare_gradients(NET, PARAMS, X, Y, loss="cross_entropy", rtol="ab"),
        TypeError,
        "`rtol` must be a pair",
    ),
    (
        "compare_gradients rtol NaN",
        lambda: fnn.compare_gradients(NET, PARAMS, X, Y, loss="cross_entropy", rtol=(1e-3, float("nan"))),
        ValueError,
        r"`rtol\[1\]` must be a finite number",
    ),
    (
        "check_derivation unknown output",
        lambda: fnn.check_derivation(fnn.losses.MSE, output="bogus"),
        ValueError,
        "`output`: unknown activation 'bogus'",
    ),
    (
        "user activation not elementwise",
        lambda: fnn.MLP((2, 3, 1), hidden=fnn.Activation("summing", jnp.sum, lambda z, h: jnp.ones_like(z))),
        ValueError,
        r"`hidden`: activation 'summing': `f` must return real floats, the shape of its input \(8,\).*returned shape \(\)",
    ),
    (
        "user activation in numpy",
        lambda: fnn.check_derivation(fnn.Activation("np", lambda z: np.tanh(np.asarray(z)), lambda z, h: 1 - h * h)),
        TypeError,
        "activation 'np': `f` cannot be traced by JAX",
    ),
    (
        "user loss not summed over outputs",
        lambda: fnn.manual_value_and_grad(
            fnn.MLP((2, 3)), fnn.Loss("unsummed", lambda h, y: (h - y) ** 2, lambda h, y: 2 * (h - y))
        ),
        ValueError,
        r"loss 'unsummed': `fn` must return real floats, one value per example \(8,\).*returned shape \(8, 3\)",
    ),
    ("data_mesh of an int", lambda: fnn.data_mesh(5), TypeError, "`devices` must be a list of jax.Device"),
    (
        "data_mesh with a device twice",
        lambda: fnn.data_mesh(jax.devices()[:1] * 2),
        ValueError,
        "`devices` lists a device more than once",
    ),
    (
        "initialiser shape negative",
        lambda: fnn.init.glorot_uniform(KEY, (-1, 2)),
        ValueError,
        r"`shape` must be an int in \[1, inf\), got -1",
    ),
    ("initialiser shape 1-D", lambda: fnn.init.he_uniform(KEY, (3,)), TypeError, r"`shape` must be \(n_out, n_in\)"),
    (
        "initialiser int dtype",
        lambda: fnn.init.he_normal(KEY, (3, 2), jnp.int32),
        TypeError,
        "`dtype` must be a float dtype, got int32",
    ),
    ("initialiser key None", lambda: fnn.init.normal(None, (3, 2)), TypeError, "`key` must be a single jax.random.key"),
    (
        "initialiser beyond memory",
        lambda: fnn.init.lecun_normal(KEY, (2**40, 2**10)),
        ValueError,
        r"a W of `shape` \(1099511627776, 1024\) would take",
    ),
    # ---- the handed-over fuzzer bugs, fixed: each its refusal by name ----
    (
        "fit checkpoint dir empty",
        lambda: fnn.fit(NET, PARAMS, (X, Y), loss="cross_entropy", epochs=1, progress=False, checkpoint=fnn.Checkpointing("")),
        ValueError,
        "`checkpoint.dir` must be a non-empty path",
    ),
    (
        "fit checkpoint dir with a NUL",
        lambda: fnn.fit(
            NET, PARAMS, (X, Y), loss="cross_entropy", epochs=1, progress=False, checkpoint=fnn.Checkpointing("a\0b")
        ),
        ValueError,
        "`checkpoint.dir` must not contain a NUL character",
    ),
    ("step state not a TrainState", lambda: _step(PARAMS, X, Y), TypeError, "`state` must be the TrainState .* got list"),
    ("step state None", lambda: _step(None, X, Y), TypeError, "`state` must be the TrainState .* got NoneType"),
    ("step x a huge int", lambda: _step(_STATE, 2**63, Y), TypeError, "`x` has dtype uint64; the network needs floats"),
    (
        "step labels out of range",
        lambda: _step(_STATE, X, np.array([0, 1, 2, 3, 0])),
        ValueError,
        r"`y` must be class indices for 3 classes, but its values span \[0, 3\]",
    ),
    (
        "step label -1 in a list",
        lambda: _step(_STATE, np.ones((5, 2), np.float32), [0, 1, 2, -1, 0]),
        ValueError,
        r"`y` must be class indices for 3 classes, but its values span \[-1, 2\]",
    ),
    (
        "step inf in one-hot rows",
        lambda: _step(_STATE, X, np.where(np.eye(3)[[0, 1, 2, 0, 1]] == 1, np.inf, 0.0)),
        ValueError,
        "`y` must be non-negative rows .* but it holds NaN or inf",
    ),
    (
        "step y rows differ",
        lambda: _step(_STATE, X, np.array([0, 1])),
        ValueError,
        r"`y` has shape \(2,\) but `x` is a batch of 5",
    ),
    (
        "make_step grad an array",
        lambda: fnn.make_step(NET, "cross_entropy", grad=np.array(["a", "b"])),
        ValueError,
        "`grad` must be 'manual' or 'autodiff', got array",
    ),
    (
        "fit grad an array",
        lambda: fnn.fit(NET, PARAMS, (X, Y), loss="cross_entropy", epochs=1, grad=np.array(["manual"])),
        ValueError,
        "`grad` must be 'manual' or 'autodiff'",
    ),
    (
        "per_example_grads labels out of range",
        lambda: fnn.per_example_grads(NET, PARAMS, X, jnp.array([0, 1, 2, 3, -1]), loss="cross_entropy"),
        ValueError,
        r"`y` must be class indices for 3 classes, but its values span \[-1, 3\]",
    ),
    (
        "per_example_grads string labels",
        lambda: fnn.per_example_grads(NET, PARAMS, X, np.array(list("abcab")), loss="cross_entropy"),
        TypeError,
        "`y` must hold numbers, got dtype <U1",
    ),
    (
        "per_example_grads inf targets for bce",
        lambda: fnn.per_example_grads(
            fnn.MLP((2, 1), output="sigmoid"), fnn.MLP((2, 1)).init(KEY), X, np.full(5, np.inf), loss="bce"
        ),
        ValueError,
        r"`y` must be targets in \[0, 1\]",
    ),
    (
        "fit epochs beyond int32",
        lambda: _fit(epochs=2**63, tol=10.0),
        ValueError,
        r"`epochs` must be an int in \[1, 2147483647\], got 9223372036854775808",
    ),
    ("fit epochs 2**40", lambda: _fit(epochs=2**40, tol=10.0), ValueError, r"`epochs` must be an int in \[1, 2147483647\]"),
    (
        "fit_many epochs beyond int32",
        lambda: fnn.fit_many(NET, (X, Y), loss="cross_entropy", epochs=2**31, key=KEY, num_networks=2, progress=False),
        ValueError,
        r"`epochs` must be an int in \[1, 2147483647\], got 2147483648",
    ),
    (
        "fit patience beyond int32",
        lambda: _fit(early_stopping=fnn.EarlyStopping(2**40), validation=(X, Y)),
        ValueError,
        r"`early_stopping.patience` must be an int in \[1, 2147483647\], got 1099511627776",
    ),
    (
        "fit NaN in the starting params",
        lambda: _fit(params=_swap(0, "W", PARAMS[0]["W"].at[0, 0].set(jnp.nan))),
        ValueError,
        r"`params\[0\]\['W'\]` holds NaN or inf: training must start from finite parameters",
    ),
    (
        "fit inf in the starting params, minibatches",
        lambda: _fit(params=_swap(1, "b", PARAMS[1]["b"].at[2].set(jnp.inf)), batch_size=2, key=KEY, epochs=2),
        ValueError,
        r"`params\[1\]\['b'\]` holds NaN or inf",
    ),
    (
        "fit_many NaN in one network's starting params",
        lambda: fnn.fit_many(
            NET,
            (X, Y),
            loss="cross_entropy",
            epochs=2,
            key=KEY,
            params=[{**layer, "W": layer["W"].at[1, 0, 0].set(jnp.nan)} if l == 0 else layer for l, layer in enumerate(STACKED)],
            progress=False,
        ),
        ValueError,
        r"`params\[0\]\['W'\]` \(network 1\) holds NaN or inf",
    ),
    (
        "fit NaN real targets",
        lambda: fnn.fit(LIN, LIN.init(KEY), (X, jnp.full((5, 1), jnp.nan)), loss="mse", epochs=1, progress=False),
        ValueError,
        r"`data\[1\]` contains NaN or inf \(first at row 0, 5 rows in all\)",
    ),
    (
        "fit inf real targets of shape (N,)",
        lambda: fnn.fit(LIN, LIN.init(KEY), (X, np.array([0, 1, np.inf, 0, 1])), loss="mse", epochs=1, progress=False),
        ValueError,
        r"`data\[1\]` contains NaN or inf \(1 entries\)",
    ),
    (
        "fit NaN validation targets",
        lambda: fnn.fit(
            LIN, LIN.init(KEY), (X, jnp.ones((5, 1))), loss="mse", epochs=1, progress=False, validation=(X, jnp.full(5, jnp.nan))
        ),
        ValueError,
        r"`validation\[1\]` contains NaN or inf",
    ),
    ("fit progress a str", lambda: _fit(progress="no"), TypeError, "`progress` must be True or False or None, got str: 'no'"),
    ("fit progress an int", lambda: _fit(progress=2), TypeError, "`progress` must be True or False or None, got int"),
    (
        "fit_many progress a str",
        lambda: fnn.fit_many(NET, (X, Y), loss="cross_entropy", epochs=1, key=KEY, num_networks=2, progress="no"),
        TypeError,
        "`progress` must be True or False or None",
    ),
    ("fit_many hyperparams a list", lambda: _many(hyperparams=[0.1, 0.5]), TypeError, "`hyperparams` must be a dict .* got list"),
    ("fit_many hyperparams []", lambda: _many(hyperparams=[]), TypeError, "`hyperparams` must be a dict .* got list"),
    (
        "fit_many hyperparams of strings",
        lambda: _many(hyperparams={"learning_rate": ["a", "b"]}),
        TypeError,
        r"`hyperparams\['learning_rate'\]` must hold real numbers, got dtype <U1",
    ),
    (
        "fit_many hyperparams complex",
        lambda: _many(hyperparams={"learning_rate": jnp.ones(2, jnp.complex64)}),
        TypeError,
        r"`hyperparams\['learning_rate'\]` must hold real numbers, got dtype complex64",
    ),
    (
        "fit_many hyperparams empty values",
        lambda: _many(hyperparams={"learning_rate": []}),
        ValueError,
        r"`hyperparams\['learning_rate'\]` must be a 1-D array with one value per network, got shape \(0,\)",
    ),
    (
        "fit_many hyperparams a non-str key",
        lambda: _many(hyperparams={0: [0.1, 0.5]}),
        TypeError,
        "`hyperparams` keys must be the optimizer's hyperparameter names",
    ),
    ("plot.curves series None", lambda: fnn.plot.curves(_ax(), None), TypeError, r"`series` must be a dict \{label: values\}"),
    ("plot.curves series a list", lambda: fnn.plot.curves(_ax(), [1.0, 2.0]), TypeError, "`series` must be a dict"),
    (
        "plot.curves str values",
        lambda: fnn.plot.curves(_ax(), {"a": ["x"]}),
        TypeError,
        r"`series\['a'\]` must hold real numbers, got dtype <U1",
    ),
    (
        "plot.curves 2-D values",
        lambda: fnn.plot.curves(_ax(), {"a": np.ones((2, 2))}),
        ValueError,
        r"`series\['a'\]` must be a 1-D sequence of values, got shape \(2, 2\)",
    ),
    (
        "plot.curves ax None",
        lambda: fnn.plot.curves(None, {"a": [1.0]}),
        TypeError,
        r"`ax` must be a matplotlib Axes .* got NoneType",
    ),
    (
        "plot.curves logy a str",
        lambda: fnn.plot.curves(_ax(), {"a": [1.0]}, logy="yes"),
        TypeError,
        "`logy` must be True or False",
    ),
    ("plot.norm_profile norms a list", lambda: fnn.plot.norm_profile(_ax(), [1.0]), TypeError, "`norms` must be a dict"),
    (
        "plot.heatmap 1-D values",
        lambda: _heatmap([0.1, 0.2]),
        ValueError,
        r"`values` must be a 2-D matrix of values, got shape \(2,\)",
    ),
    ("plot.heatmap str values", lambda: _heatmap([["a"]]), TypeError, "`values` must hold real numbers"),
    (
        "plot.heatmap too few tick labels",
        lambda: _heatmap(np.ones((3, 2))),
        ValueError,
        r"`yticks` has 2 labels but `values` has 3 rows \(shape \(3, 2\)\)",
    ),
    (
        "plot.heatmap fmt not a format",
        lambda: fnn.plot.heatmap(_ax(), np.ones((1, 1)), xticks=[1], yticks=[1], fmt="{:d}"),
        ValueError,
        "`fmt` must format one number",
    ),
    (
        "plot.decision_boundary y of the wrong length",
        lambda: _boundary(y=np.zeros(4, int)),
        ValueError,
        "`y` has 4 labels but `x` has 6 points",
    ),
    ("plot.decision_boundary negative y", lambda: _boundary(y=-np.ones(6, int)), ValueError, r"`y` must be class indices"),
    ("plot.decision_boundary str y", lambda: _boundary(y=np.array(list("abcabc"))), TypeError, "`y` must hold real numbers"),
    ("plot.decision_boundary margin a str", lambda: _boundary(margin="x"), TypeError, "`margin` must be a real number"),
    ("plot.decision_boundary margin NaN", lambda: _boundary(margin=float("nan")), ValueError, "`margin` must be a finite number"),
    ("plot.decision_boundary margin < 0", lambda: _boundary(margin=-5.0), ValueError, "`margin` must be a finite number >= 0"),
    ("plot.decision_boundary resolution a str", lambda: _boundary(resolution="10"), TypeError, "`resolution` must be an int"),
    ("plot.decision_boundary resolution 1", lambda: _boundary(resolution=1), ValueError, r"`resolution` must be an int in \[2"),
    ("plot.decision_boundary resolution huge", lambda: _boundary(resolution=2**40), ValueError, "`resolution` = .* would take"),
    ("plot.decision_boundary net None", lambda: _boundary(net=None), TypeError, "`net` must be an fnn.MLP"),
    ("plot.decision_boundary NaN x", lambda: _boundary(x=np.full((6, 2), np.nan)), ValueError, "`x` contains NaN or inf"),
    ("plot.decision_boundary x 1-D", lambda: _boundary(x=np.ones(6)), ValueError, "`x` must be a 2-D matrix"),
    ("plot.subplots nrows 0", lambda: fnn.plot.subplots(0), ValueError, r"`nrows` must be an int in \[1"),
    ("plot.save fig None", lambda: fnn.plot.save(None, "a.png"), TypeError, "`fig` must be a matplotlib Figure"),
    ("plot.save path an int", lambda: fnn.plot.save(fnn.plot.subplots()[0], 5), TypeError, "`path` must be a path"),
    # found by tools/fuzz_api.py's drivers of steps_per_epoch, per_epoch and set_hyperparams
    ("steps_per_epoch drop_last a str, full batch", lambda: fnn.steps_per_epoch(7, None, "yes"), TypeError, "`drop_last`"),
    ("per_epoch steps 2**40", lambda: fnn.per_epoch(optax.constant_schedule(0.1), 2**40), ValueError, "`steps`"),
    (
        "set_hyperparams value (2,)",
        lambda: fnn.set_hyperparams(_hyper_state(), learning_rate=np.ones(2)),
        ValueError,
        "`learning_rate` must have the shape",
    ),
    (
        "set_hyperparams value None",
        lambda: fnn.set_hyperparams(_hyper_state(), learning_rate=None),
        TypeError,
        "`learning_rate` must be a real number",
    ),
    (
        "set_hyperparams value a dict",
        lambda: fnn.set_hyperparams(_hyper_state(), learning_rate={"a": 1}),
        TypeError,
        "`learning_rate` must be a real number",
    ),
    (
        "best_setting reduce an array",
        lambda: fnn.sweep.best_setting(
            {"val_loss": np.ones((2, 1)), "epochs_run": np.ones(2, int)},
            fnn.sweep.paired_grid(seeds=1, learning_rate=[0.1, 0.3]),
            reduce=np.array(["a", "b"]),
        ),
        ValueError,
        "`reduce` must be 'mean' or 'median'",
    ),
    (
        "set_hyperparams value True",
        lambda: fnn.set_hyperparams(_hyper_state(), learning_rate=True),
        TypeError,
        "`learning_rate` must be a real number",
    ),
    # found by tools/fuzz_api.py's drivers of networks of blocks (issue 26)
    (
        "evaluate a network whose running statistics were never trained",
        lambda: fnn.evaluate(_BN_NET, _BN_NET.init(KEY), jnp.ones((4, 3)), jnp.zeros((4, 2)), loss="mse"),
        ValueError,
        r"`params\[1\]\['state'\]` were never trained",
    ),
    (
        "evaluate a network whose running mean is NaN",
        lambda: fnn.evaluate(_BN_NET, _bn_stats(np.nan), jnp.ones((4, 3)), jnp.zeros((4, 2)), loss="mse"),
        ValueError,
        r"the running statistics `params\[1\]\['state'\]` hold NaN or inf",
    ),
    (
        "fit key a batch of keys",
        lambda: fnn.fit(
            NET, PARAMS, (X, Y), loss="cross_entropy", epochs=1, batch_size=2, key=jax.random.split(KEY), progress=False
        ),
        TypeError,
        r"`key` must be a single jax.random.key\(seed\)",
    ),
    (
        "Network.init dtype an array",
        lambda: _BN_NET.init(KEY, jnp.ones(2)),
        TypeError,
        "`dtype` must be a float dtype",
    ),
]

_BN_NET = fnn.Network(
    3, [fnn.blocks.Dense(4, bias=False), fnn.blocks.BatchNorm(), fnn.blocks.Activate("relu"), fnn.blocks.Dense(2)]
)


def _bn_stats(mean):
    """``_BN_NET``'s parameters with running statistics as training leaves them, the mean set to ``mean``."""
    p = _BN_NET.init(KEY)
    p[1] = {**p[1], "state": {"mean": jnp.full(4, mean, jnp.float32), "var": jnp.full(4, 2.0, jnp.float32)}}
    return p


def _hyper_state():
    return fnn.make_step(NET, "mse", optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)).init(NET.init(KEY))


CATALOGUE = SPEC_CASES + FORWARD_CASES + LOSS_CASES + TRAIN_CASES + DATA_CASES + FUZZ_CASES


def test_catalogue_size():
    """The issue asks for at least 40 cases across the public API."""
    assert len(SPEC_CASES + FORWARD_CASES + LOSS_CASES + TRAIN_CASES + DATA_CASES) >= 40


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c[0])
def test_bad_input(case):
    _, fn, err, match = case
    with pytest.raises(err, match=match):
        fn()


def test_errors_fire_before_tracing():
    """Inside jit the same static checks raise the same clear errors, not XLA shape errors."""
    f = jax.jit(fnn.manual_value_and_grad(NET, "cross_entropy"))
    with pytest.raises(ValueError, match="`x` has 3 features"):
        f(PARAMS, jnp.ones((5, 3)), Y)
    with pytest.raises(ValueError, match="one-hot width 4"):
        f(PARAMS, X, jnp.eye(4)[Y])


def test_float16_inputs_are_promoted_not_refused():
    """float16 x with float32 params computes in float32 (JAX promotion), like any mixed precision."""
    E, g = fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, X.astype(jnp.float16), Y)
    assert E.dtype == jnp.float32 and g[0]["W"].dtype == jnp.float32 and np.isfinite(float(E))


def test_lists_are_accepted_where_unambiguous():
    out = NET.apply(PARAMS, [[0.0, 1.0], [1.0, 0.0]])
    assert out.shape == (2, 3)
    E, _ = fnn.manual_value_and_grad(NET, "cross_entropy")(PARAMS, [[0.0, 1.0]], [2])
    assert np.isfinite(float(E))


@pytest.mark.parametrize("fn", ["evaluate", "compare_gradients", "per_example_grads"])
def test_the_old_argument_order_works_with_a_deprecation_warning(fn):
    net = fnn.MLP((2, 3, 2), hidden="tanh", output="softmax")
    params, x, y = net.init(jax.random.key(0)), jnp.ones((4, 2)), jnp.array([0, 1, 1, 0])
    new = getattr(fnn, fn)(net, params, x, y, loss="cross_entropy")
    with pytest.warns(
        DeprecationWarning, match=rf"{fn}\(net, loss, params, x, y\) is deprecated; call {fn}\(net, params, x, y, loss=...\)"
    ):
        old = getattr(fnn, fn)(net, "cross_entropy", params, x, y)
    a, b = (new.max_autodiff_rel, old.max_autodiff_rel) if fn == "compare_gradients" else (new, old)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda u, v: bool(jnp.array_equal(u, v)), a, b))
    with pytest.raises(TypeError, match=f"{fn}\\(\\) missing the keyword argument `loss`"):
        getattr(fnn, fn)(net, params, x, y)
    with pytest.raises(TypeError, match="pass loss=... and the rest by keyword"):
        getattr(fnn, fn)(net, params, x, y, "cross_entropy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_data_finiteness_check_is_exact(dtype):
    """The check's fast path (one row-sum product) neither refuses finite data whose row sums overflow
    nor lets through a single NaN, +inf or -inf, wherever it sits (first and last row, one column)."""
    from fnn import _checks

    big = np.full((5, 7), np.finfo(dtype).max / 2, dtype)  # every row sum overflows to inf; all finite
    _checks.check_finite(big, "x")
    _checks.check_finite(-big, "x")
    for row, col, v in [(0, 0, np.nan), (4, 6, np.inf), (2, 3, -np.inf)]:
        a = np.ones((5, 7), dtype)
        a[row, col] = v
        with pytest.raises(ValueError, match=rf"`x` contains NaN or inf \(first at row {row}, 1 rows in all"):
            _checks.check_finite(a, "x")
    both = np.ones((5, 7), dtype)
    both[1, 0], both[1, 1] = np.inf, -np.inf  # the row sum is NaN
    with pytest.raises(ValueError, match="first at row 1"):
        _checks.check_finite(jnp.asarray(both) if dtype == np.float32 else both, "x")


def test_relu_propagates_nan():
    """relu(NaN) is NaN (it was 0: a NaN input gave a finite output through a ReLU layer); relu(0) = 0 and
    relu'(0) = 0 as before."""
    z = jnp.array([-1.0, 0.0, 2.0, jnp.nan])
    assert np.array_equal(fnn.activations.relu(z), [0.0, 0.0, 2.0, np.nan], equal_nan=True)
    assert float(jax.grad(fnn.activations.relu)(0.0)) == 0.0
    net = fnn.MLP((2, 3, 1), hidden="relu")
    out = net.apply(net.init(KEY), jnp.array([[jnp.nan, 1.0], [1.0, 1.0]]))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    # relu' follows jax.grad of relu there too (1 at NaN), so manual and autodiff still agree leaf for leaf
    assert np.array_equal(fnn.activations.relu_grad(z), jax.vmap(jax.grad(fnn.activations.relu))(z), equal_nan=True)
    params = [dict(layer) for layer in net.init(KEY)]
    params[0]["W"] = params[0]["W"].at[0, 0].set(jnp.nan)
    _, cache = net.forward(params, X)
    manual = fnn.backward_pass(net, params, cache, jnp.ones((5, 1))).grads
    _, vjp = jax.vjp(lambda p: net.forward(p, X)[1].z[-1], params)
    for a, b in zip(jax.tree_util.tree_leaves(manual), jax.tree_util.tree_leaves(vjp(jnp.ones((5, 1)))[0])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # NaN where the other is NaN


def test_accuracy_of_nan_outputs_is_nan():
    """An argmax or threshold over NaN outputs is no prediction (it counted as one before)."""
    for kind in ("argmax", "threshold"):
        assert np.isnan(float(fnn.metrics.accuracy(kind, jnp.array([[jnp.nan, 0.0]]), jnp.array([[1.0, 0.0]]))))
    bad = [dict(layer) for layer in PARAMS]
    bad[1]["b"] = jnp.full(3, jnp.inf)
    assert np.isnan(float(fnn.evaluate(NET, bad, X, Y, loss="cross_entropy")["accuracy"]))


@pytest.mark.parametrize("container", ["tuple", "OrderedDict"])
def test_manual_gradients_keep_the_params_pytree(container):
    """The manual backward pass returns its gradients in the pytree of ``params`` (a tuple of layers, an
    OrderedDict with its key order), as jax.grad does; a list came back before, and optax's update failed."""
    from collections import OrderedDict

    params = tuple(PARAMS) if container == "tuple" else [OrderedDict([("b", l["b"]), ("W", l["W"])]) for l in PARAMS]
    _, g = fnn.manual_value_and_grad(NET, "cross_entropy")(params, X, Y)
    _, g2 = fnn.autodiff_value_and_grad(NET, "cross_entropy")(params, X, Y)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(g2) == jax.tree_util.tree_structure(params)
    step = fnn.make_step(NET, "cross_entropy")
    state, _ = step(step.init(params), X, Y)
    assert jax.tree_util.tree_structure(state.params) == jax.tree_util.tree_structure(params)


def test_one_example_takes_a_python_label():
    """One example's class index may be a Python int (it was refused: `y` must be an array)."""
    E = fnn.evaluate(NET, PARAMS, X[0], 2, loss="cross_entropy")["loss"]
    assert np.isclose(float(E), float(fnn.evaluate(NET, PARAMS, X[:1], jnp.array([2]), loss="cross_entropy")["loss"]))


def test_a_malformed_user_activation_is_refused_at_every_use():
    """A user-made activation that fails its check is refused again the next time (it was marked checked
    before the check ran, so a second use went on to fail deep inside JAX)."""
    act = fnn.Activation("np_tanh", lambda z: np.tanh(np.asarray(z)), lambda z, h: 1 - h * h)
    for _ in range(2):
        with pytest.raises(TypeError, match="`hidden`: activation 'np_tanh': `f` cannot be traced by JAX"):
            fnn.MLP((2, 3, 1), hidden=act)


def test_activation_params_as_a_list_or_dict_become_pairs():
    a = fnn.Activation("scaled", *TANH, params=[("a", 2.0)])
    b = fnn.Activation("scaled", *TANH, params={"a": 2.0})
    assert a.params == b.params == (("a", 2.0),)
    hash(
        fnn.MLP((2, 3, 1), hidden=fnn.Activation("t", fnn.activations.tanh, lambda z, h: (1 - h) * (1 + h), params=[("a", 1.0)]))
    )


def test_an_int_noise_is_a_multiplier_however_large():
    """noise=2**63 (an int) overflowed jit's int32 staging of the argument; it multiplies as a float."""
    x, _ = fnn.datasets.blobs(KEY, 4, noise=2**63, centers=[[0.0, 0.0], [1.0, 1.0]])
    assert x.shape == (4, 2) and np.isfinite(np.asarray(x)).all()
    assert np.array_equal(fnn.datasets.moons(KEY, 6, noise=1)[0], fnn.datasets.moons(KEY, 6, noise=1.0)[0])


def test_a_history_beyond_memory_is_refused_by_epochs(monkeypatch):
    """The history is allocated for every epoch up front: epochs whose history cannot fit are refused."""
    monkeypatch.setattr(fnn._checks, "memory_limit", lambda: 2**30)
    with pytest.raises(ValueError, match=r"the history of `epochs` = 1,073,741,824 epochs would take 4 GiB, more than the 1 GiB"):
        _fit(epochs=2**30, tol=10.0)
    with pytest.raises(ValueError, match=r"the history of `epochs` = 268,435,456 epochs would take 2 GiB"):
        fnn.fit_many(NET, (X, Y), loss="cross_entropy", epochs=2**28, key=KEY, num_networks=2, tol=10.0, progress=False)


def test_progress_takes_a_numpy_bool(capsys):
    _fit(progress=np.bool_(False))
    assert "epoch" not in capsys.readouterr().err


def test_plot_functions_still_draw_valid_input():
    """The checks of fnn.plot let every valid form through: int points, float class indices, (N, 1) labels, NaN cells."""
    ax = _boundary(x=np.array([[0, 0], [1, 1], [0, 1], [1, 0], [2, 2], [2, 0]]), y=np.array([[0.0], [1], [2], [0], [1], [2]]))
    assert len(ax.collections) > 0
    assert len(fnn.plot.curves(_ax(), {}).lines) == 0
    assert len(_heatmap([[np.nan, 0.2], [0.3, 0.4]]).texts) == 4
