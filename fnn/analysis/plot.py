"""Figures for what a network learned: decision boundaries, training curves, per-layer gradients.

matplotlib is optional (``pip install "fnn[experiments]"``) and imported only when a function
here is called. Figures are built with ``matplotlib.figure.Figure`` directly — no pyplot, no
global backend change — so this works headless and inside scripts that use pyplot themselves.
Every function draws on an ``Axes`` you pass and returns it.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _checks
from fnn.core.mlp import MLP, Params


def _matplotlib() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError('fnn.plot needs matplotlib: pip install "fnn[experiments]"') from e
    return matplotlib, Figure


# ---- argument checks: in Python, by name, before anything is drawn ----------------------------------
def _check_ax(ax: Any) -> None:
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"`ax` must be a matplotlib Axes (e.g. from fnn.plot.subplots()), got {type(ax).__name__}")


def _check_text(value: Any, name: str, allow_none: bool = False) -> None:
    if not (isinstance(value, str) or (allow_none and value is None)):
        raise TypeError(f"`{name}` must be a str{' or None' if allow_none else ''}, got {type(value).__name__}: {value!r:.40}")


def _real(values: Any, name: str, ndim: int) -> np.ndarray:
    """``values`` as a float64 numpy array of ``ndim`` dimensions, holding real numbers (NaN allowed)."""
    a = _checks.as_array(values, name)
    if np.dtype(a.dtype).kind not in "biuf":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {a.dtype}")
    if a.ndim != ndim:
        want = "a 1-D sequence of values" if ndim == 1 else "a 2-D matrix of values"
        raise ValueError(f"`{name}` must be {want}, got shape {tuple(a.shape)}")
    return np.asarray(a, float)


def _series(series: Any, name: str) -> dict[str, np.ndarray]:
    """``{label: 1-D real values}`` of a curves / norm_profile call."""
    if not isinstance(series, Mapping):
        raise TypeError(
            f"`{name}` must be a dict {{label: values}}, e.g. {{'train': history['loss']}}, got {type(series).__name__}: "
            f"{series!r:.40}"
        )
    return {str(label): _real(values, f"{name}[{label!r}]", 1) for label, values in series.items()}


def subplots(nrows: int = 1, ncols: int = 1, *, size: float = 3.2, squeeze: bool = True) -> tuple[Any, Any]:
    """A ``(figure, axes)`` pair without pyplot; axes is one Axes or an array of them.

    >>> fig, axes = subplots(1, 2)
    >>> len(axes)
    2
    """
    _, Figure = _matplotlib()
    _checks.check_int(nrows, "nrows", 1)
    _checks.check_int(ncols, "ncols", 1)
    _checks.check_number(size, "size", 0.0, low_open=True)
    _checks.check_flag(squeeze, "squeeze")
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze)
    return fig, axes


def save(fig: Any, path: str | pathlib.Path, dpi: int = 110) -> pathlib.Path:
    """Write ``fig`` as PNG (parent folders are created).

    >>> import tempfile
    >>> fig, ax = subplots()
    >>> path = save(fig, f"{tempfile.mkdtemp()}/figs/empty.png")
    >>> path.name, path.stat().st_size > 0
    ('empty.png', True)
    """
    _matplotlib()
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"`fig` must be a matplotlib Figure (e.g. from fnn.plot.subplots()), got {type(fig).__name__}")
    path = _checks.check_path(path)
    _checks.check_number(dpi, "dpi", 0.0, low_open=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def decision_boundary(
    ax: Any,
    net: MLP,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    resolution: int = 150,
    title: str | None = None,
    margin: float = 0.3,
) -> Any:
    """Shade the predicted class over the plane and scatter the data (2-D inputs only).

    Args:
      ax: a matplotlib Axes.
      net, params: a network with 2 inputs; one sigmoid output (threshold ½) or K outputs (argmax).
      x: points (N, 2). y: their class indices (N,).

    Example:
      >>> import jax
      >>> net, (fig, ax) = MLP((2, 4, 2), output="softmax"), subplots()
      >>> decision_boundary(ax, net, net.init(jax.random.key(0)), jnp.eye(2), jnp.array([0, 1]), resolution=20) is ax
      True
    """
    _matplotlib()
    _check_ax(ax)
    _checks.check_net(net)
    if net.sizes[0] != 2:
        raise ValueError(f"decision_boundary needs a network with 2 inputs, got sizes {net.sizes}")
    _checks.check_params(net, params)
    x = _real(x, "x", 2)
    if x.shape[1] != 2 or x.shape[0] == 0:
        raise ValueError(f"`x` must be points of shape (N, 2) with N >= 1, got shape {x.shape}")
    _checks.check_finite(x, "x")
    y = _real(y, "y", np.ndim(y) if np.ndim(y) in (1, 2) else 1).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"`y` has {y.shape[0]} labels but `x` has {x.shape[0]} points: one class index per point")
    if not (np.isfinite(y).all() and (y >= 0).all() and (y == np.round(y)).all()):
        raise ValueError(f"`y` must be class indices (integers >= 0), got values in [{np.nanmin(y)}, {np.nanmax(y)}]")
    resolution = _checks.check_int(resolution, "resolution", 2)
    _checks.check_memory(resolution**2 * 2 * max(net.sizes[-1], 2), 8, f"`resolution` = {resolution:,} (a grid of its square)")
    margin = _checks.check_number(margin, "margin", 0.0)
    _check_text(title, "title", allow_none=True)
    lo, hi = x.min(0) - margin, x.max(0) + margin
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = jnp.asarray(np.stack([g0.ravel(), g1.ravel()], 1), params[0]["W"].dtype)
    out = np.asarray(net.apply(params, grid))
    pred = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(1)
    k = max(int(y.max()) + 1, int(pred.max()) + 1, 2)
    cmap = "coolwarm" if k == 2 else "tab10"
    ax.contourf(
        g0,
        g1,
        pred.reshape(g0.shape),
        levels=np.arange(k + 1) - 0.5,
        cmap=cmap,
        alpha=0.35,
        vmin=0,
        vmax=max(k - 1, 1) if k == 2 else 9,
    )
    ax.scatter(
        x[:, 0], x[:, 1], c=y, cmap=cmap, s=12, edgecolors="k", linewidths=0.3, vmin=0, vmax=max(k - 1, 1) if k == 2 else 9
    )
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def curves(
    ax: Any,
    series: Mapping[str, ArrayLike],
    *,
    ylabel: str = "",
    xlabel: str = "epoch",
    logy: bool = False,
    title: str | None = None,
) -> Any:
    """One line per named series (NaN tails, e.g. after early stopping, are simply not drawn).

    >>> fig, ax = subplots()
    >>> ax = curves(ax, {"train": [1.0, 0.5, 0.2], "val": [1.1, 0.7, float("nan")]}, ylabel="loss", logy=True)
    >>> len(ax.lines), ax.get_yscale(), ax.get_legend() is not None
    (2, 'log', True)
    """
    _matplotlib()
    _check_ax(ax)
    series = _series(series, "series")
    for name, value in (("ylabel", ylabel), ("xlabel", xlabel)):
        _check_text(value, name)
    _check_text(title, "title", allow_none=True)
    _checks.check_flag(logy, "logy")
    for label, v in series.items():
        ax.plot(np.arange(1, len(v) + 1), v, label=label, lw=1.2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    if len(series) > 1:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


def norm_profile(ax: Any, norms: Mapping[str, ArrayLike], *, title: str | None = None) -> Any:
    """Per-layer gradient norms (one value per layer, input side first), log scale, one line per label.

    >>> fig, ax = subplots()
    >>> ax = norm_profile(ax, {"tanh": [1e-4, 1e-3, 1e-2], "relu": [0.1, 0.1, 0.1]})
    >>> len(ax.lines), ax.get_yscale(), ax.lines[0].get_xdata().tolist()
    (2, 'log', [1, 2, 3])
    """
    _matplotlib()
    _check_ax(ax)
    norms = _series(norms, "norms")
    _check_text(title, "title", allow_none=True)
    for label, v in norms.items():
        ax.plot(np.arange(1, len(v) + 1), v, marker="o", ms=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("layer l (1 = next to the input)")
    ax.set_ylabel("‖∂E/∂W⁽ˡ⁾‖")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


def heatmap(
    ax: Any,
    values: ArrayLike,
    *,
    xticks: Sequence[Any],
    yticks: Sequence[Any],
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    fmt: str = "{:.2f}",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Any:
    """A matrix of numbers with each cell annotated.

    >>> fig, ax = subplots()
    >>> ax = heatmap(ax, [[0.1, 0.2], [0.3, 0.4]], xticks=["a", "b"], yticks=[1, 2])
    >>> [t.get_text() for t in ax.texts], len(fig.axes)  # the second Axes is the colorbar
    (['0.10', '0.20', '0.30', '0.40'], 2)
    """
    _matplotlib()
    _check_ax(ax)
    v = _real(values, "values", 2)
    for name, ticks, n in (("xticks", xticks, v.shape[1]), ("yticks", yticks, v.shape[0])):
        if isinstance(ticks, (str, bytes)) or not hasattr(ticks, "__len__"):
            raise TypeError(f"`{name}` must be a sequence of labels, got {type(ticks).__name__}: {ticks!r:.40}")
        if len(ticks) != n:
            axis = "columns" if name == "xticks" else "rows"
            raise ValueError(f"`{name}` has {len(ticks)} labels but `values` has {n} {axis} (shape {v.shape})")
    for name, value in (("xlabel", xlabel), ("ylabel", ylabel), ("fmt", fmt)):
        _check_text(value, name)
    _check_text(title, "title", allow_none=True)
    try:
        fmt.format(0.5)
    except (ValueError, IndexError, KeyError) as e:
        raise ValueError(f"`fmt` must format one number, e.g. '{{:.2f}}', got {fmt!r}: {e}") from None
    for name, bound in (("vmin", vmin), ("vmax", vmax)):
        if bound is not None:
            _checks.check_number(bound, name)
    im = ax.imshow(v, cmap="viridis", aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(xticks)), [str(t) for t in xticks], fontsize=7)
    ax.set_yticks(range(len(yticks)), [str(t) for t in yticks], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for (i, j), val in np.ndenumerate(v):
        ax.text(
            j,
            i,
            fmt.format(val),
            ha="center",
            va="center",
            fontsize=6,
            color="w" if np.isfinite(val) and val < np.nanmean(v) else "k",
        )
    if title:
        ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    return ax
