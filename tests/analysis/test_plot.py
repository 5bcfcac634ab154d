"""fnn.plot: the data each function puts on the axes (lines, contour regions, scatter points, image
cells, labels, scales), checked against its inputs rather than "something was drawn"."""

import jax
import jax.numpy as jnp
import numpy as np

import fnn  # matplotlib is in the test extra (fnn[experiments]): no skip without it


def _spy_contourf(ax):
    """Record the arguments of ``ax.contourf`` (and still draw): the grid and the class of every grid point."""
    calls, draw = [], ax.contourf

    def contourf(*args, **kwargs):
        calls.append((args, kwargs))
        return draw(*args, **kwargs)

    ax.contourf = contourf
    return calls


def test_decision_boundary_shades_the_class_the_network_predicts_at_each_grid_point():
    net = fnn.MLP((2, 6, 3), hidden="tanh", output="softmax")
    params = net.init(jax.random.key(0))
    params[0]["W"] = 3 * params[0]["W"]  # sharper regions, so the 7 × 7 grid meets all three classes
    x = np.array([[-1.0, -0.5], [0.0, 2.0], [1.5, 0.5], [0.5, -1.0], [-0.5, 1.0], [1.0, 1.5]])
    y = np.array([0, 1, 2, 1, 0, 2])
    _, ax = fnn.plot.subplots()
    calls = _spy_contourf(ax)
    assert fnn.plot.decision_boundary(ax, net, params, x, y, resolution=7, margin=0.25, title="three classes") is ax
    (g0, g1, classes), kwargs = calls[0]
    # the grid: 7 points from min - margin to max + margin along each input; g0 varies along columns, g1 along rows
    xs, ys = np.linspace(-1.25, 1.75, 7), np.linspace(-1.25, 2.25, 7)
    np.testing.assert_allclose(g0, np.tile(xs, (7, 1)))
    np.testing.assert_allclose(g1, np.tile(ys[:, None], (1, 7)))
    # the class at grid point (row i, column j) is the argmax of the network's output at (xs[j], ys[i])
    points = np.array([[xs[j], ys[i]] for i in range(7) for j in range(7)])
    expected = np.argmax(np.asarray(net.apply(params, jnp.asarray(points, jnp.float32))), 1).reshape(7, 7)
    np.testing.assert_array_equal(classes, expected)
    assert set(expected.ravel()) == {0, 1, 2}
    np.testing.assert_allclose(kwargs["levels"], [-0.5, 0.5, 1.5, 2.5])  # class k fills (k - ½, k + ½)
    # the scatter is the data, coloured by label; the view is the grid's extent
    regions, points_drawn = ax.collections
    np.testing.assert_allclose(regions.levels, [-0.5, 0.5, 1.5, 2.5])
    np.testing.assert_allclose(points_drawn.get_offsets(), x)
    np.testing.assert_array_equal(points_drawn.get_array(), y)
    np.testing.assert_allclose(ax.get_xlim(), (-1.25, 1.75))
    np.testing.assert_allclose(ax.get_ylim(), (-1.25, 2.25))
    assert ax.get_title() == "three classes"


def test_decision_boundary_of_one_sigmoid_output_thresholds_at_one_half():
    """σ(x₀): class 1 right of the vertical line x₀ = 0 (σ(0) = ½ itself is class 0), whatever x₁ is."""
    net = fnn.MLP((2, 1), hidden=(), output="sigmoid")
    params = [{"W": jnp.array([[1.0, 0.0]]), "b": jnp.zeros(1)}]
    x, y = np.array([[-1.0, -2.0], [1.0, 2.0]]), np.array([0, 1])
    _, ax = fnn.plot.subplots()
    calls = _spy_contourf(ax)
    fnn.plot.decision_boundary(ax, net, params, x, y, resolution=5, margin=0.0)
    classes = calls[0][0][2]  # columns at x₀ = -1, -0.5, 0, 0.5, 1; rows at x₁ = -2, -1, 0, 1, 2
    np.testing.assert_array_equal(classes, np.tile([0, 0, 0, 1, 1], (5, 1)))
    # what is drawn: the region of class 1 holds the points right of the line, that of class 0 those left of it
    class0, class1 = ax.collections[0].get_paths()
    for point in [(0.75, -1.5), (0.75, 0.0), (0.75, 1.5)]:
        assert class1.contains_point(point) and not class0.contains_point(point)
    for point in [(-0.75, -1.5), (-0.75, 0.0), (-0.75, 1.5)]:
        assert class0.contains_point(point) and not class1.contains_point(point)


def test_curves_draw_each_series_against_epochs_from_one():
    _, ax = fnn.plot.subplots()
    series = {"train": [1.0, 0.5, 0.25, 0.125], "val": [1.2, 0.7, 0.6, np.nan]}
    fnn.plot.curves(ax, series, ylabel="loss", logy=True, title="run")
    assert [line.get_label() for line in ax.lines] == ["train", "val"]
    for line, values in zip(ax.lines, series.values()):
        np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
        np.testing.assert_array_equal(line.get_ydata(), values)  # the NaN tail stays NaN: not drawn
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
    assert ax.get_title() == "run"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val"]
    _, ax = fnn.plot.subplots()
    fnn.plot.curves(ax, {"accuracy": np.array([0.5, 0.75])}, xlabel="step")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0.5, 0.75])
    assert ax.get_yscale() == "linear" and ax.get_xlabel() == "step" and ax.get_legend() is None


def test_norm_profile_draws_one_point_per_layer_input_side_first():
    _, ax = fnn.plot.subplots()
    norms = {"tanh": [1e-4, 1e-3, 1e-2], "relu": np.array([0.3, 0.2, 0.1])}
    fnn.plot.norm_profile(ax, norms, title="gradients")
    assert [line.get_label() for line in ax.lines] == ["tanh", "relu"]
    for line, values in zip(ax.lines, norms.values()):
        np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])  # layer 1 is next to the input
        np.testing.assert_array_equal(line.get_ydata(), values)
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "‖∂E/∂W⁽ˡ⁾‖" and ax.get_title() == "gradients"


def test_heatmap_shows_the_matrix_as_given_with_each_cell_annotated():
    """A 2 × 3 matrix (not square, so a transpose shows): row i is drawn at y = i, column j at x = j."""
    fig, ax = fnn.plot.subplots()
    values = np.array([[0.1, 0.2, 0.3], [0.4, np.nan, 0.6]])
    fnn.plot.heatmap(ax, values, xticks=["a", "b", "c"], yticks=[1, 2], xlabel="col", ylabel="row", vmin=0.0, vmax=1.0)
    (image,) = ax.images
    drawn = image.get_array()
    assert drawn.shape == (2, 3)
    np.testing.assert_array_equal(np.ma.filled(drawn, np.nan), values)
    assert image.get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"] and list(ax.get_xticks()) == [0, 1, 2]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2"] and list(ax.get_yticks()) == [0, 1]
    assert ax.get_xlabel() == "col" and ax.get_ylabel() == "row"
    # one annotation per cell at (column, row), the value formatted; white below the mean of the finite cells (0.32)
    cells = {tuple(t.get_position()): (t.get_text(), t.get_color()) for t in ax.texts}
    assert cells == {
        (0, 0): ("0.10", "w"),
        (1, 0): ("0.20", "w"),
        (2, 0): ("0.30", "w"),
        (0, 1): ("0.40", "k"),
        (1, 1): ("nan", "k"),
        (2, 1): ("0.60", "k"),
    }
    assert len(fig.axes) == 2  # and a colorbar
