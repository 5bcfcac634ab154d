"""The documentation site: its API reference pages, its Sphinx hooks and the commands that build and open it.

Run from the repository root:
     python -m tools.site build    (docs/ -> docs/_build/html, warnings as errors; prints the build time)
     python -m tools.site build --fresh   (the same, every notebook run again: after a change to fnn itself)
     python -m tools.site open     (opens the built site's front page in a browser)
     python -m tools.site page docs/guide/neuron.md   (executes one guide page as a notebook, no Sphinx)

Stack: Sphinx with MyST-NB, as JAX, optax and Flax build theirs. The guide's pages are MyST text
notebooks (``docs/guide/*.md``, jupytext's ``myst`` format: a reader opens them in Jupyter as
notebooks), executed when the site builds with outputs and figures shown; execution is cached
(jupyter-cache, under ``docs/_build/.jupyter_cache``) so a page whose code did not change is not run
again. The API reference is autodoc over every public name, grouped by fnn's sub-packages; its pages are
written by :func:`write_api_pages` when the build starts, from the packages' ``__all__`` (and, in a
module without one, the public names it defines), so a new public name appears without editing a page
and one without a docstring fails the build. Math is MathJax, bundled with the site
(``sphinx-mathjax-offline``): nothing is fetched at view time.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import inspect
import os
import pathlib
import subprocess
import sys
import time
import types
import webbrowser
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD = DOCS / "_build"
HTML = BUILD / "html"
API_OUT = DOCS / "api" / "generated"

# fnn's sub-packages, in the order of the layers (the math first), each with a one-line title
SUBPACKAGES = {
    "fnn.core": "the math: activations, losses, layers, the MLP, the δ recursion, blocks",
    "fnn.check": "derivations and gradients checked against jax.grad and finite differences",
    "fnn.train": "steps, fit and fit_many, resumable runs, data parallelism",
    "fnn.analysis": "metrics, fit_many's results, plots",
    "fnn.data": "datasets and preprocessing",
    "fnn.runs": "checkpoint files",
    "fnn.sklearn": "scikit-learn estimators",
}


# the guide and how-to pages that explain each sub-package (each reference page links them)
GUIDE_PAGES = {
    "fnn.core": ["guide/neuron", "guide/mlp", "guide/activations", "guide/losses", "guide/backprop", "guide/blocks"],
    "fnn.check": ["guide/backprop", "guide/activations", "howto/own_activation"],
    "fnn.train": ["guide/training", "guide/many", "howto/long_runs", "howto/scale"],
    "fnn.analysis": ["guide/many", "guide/overfitting"],
    "fnn.data": ["guide/training", "guide/overfitting"],
    "fnn.runs": ["howto/long_runs"],
    "fnn.sklearn": ["results"],
}


def public_names(module: types.ModuleType) -> list[str]:
    """A module's public names: its ``__all__``, or else the public names it defines itself."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    own = [k for k, v in vars(module).items() if not k.startswith("_") and getattr(v, "__module__", None) == module.__name__]
    return own + [k for k in _constants(module) if k not in own]


def _constants(module: types.ModuleType) -> list[str]:
    """The UPPER_CASE names a module assigns at its top level (constants have no ``__module__``)."""
    return [k for k in _assignments(pathlib.Path(str(module.__file__))) if k.isupper() and not k.startswith("_")]


@functools.cache
def _assignments(path: pathlib.Path) -> dict[str, int]:
    """Each name a module's top level assigns (``X = ...``, ``X: T = ...``, ``A, B = ...``) -> its line (1-based)."""
    import ast

    out: dict[str, int] = {}
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            for e in [t] if isinstance(t, ast.Name) else getattr(t, "elts", []):
                if isinstance(e, ast.Name):
                    out.setdefault(e.id, node.lineno)
    return out


def _directive(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if callable(obj) and str(getattr(obj, "__module__", "")).startswith("fnn"):  # not a typing alias (PathLike)
        return "autofunction"
    return "autodata"


def api_entries() -> dict[str, list[tuple[str, str | None, list[tuple[str, str]]]]]:
    """Each sub-package's entries: ``(section, module or None, [(directive, dotted name)])``.

    Every public object is documented once, at the first place the sub-packages' ``__all__`` names it:
    a name a sub-package exports itself (``fnn.core.MLP``) is documented there, and the module that
    defines it (``fnn.core.mlp``) lists the rest of its names.
    """
    out: dict[str, list[tuple[str, str | None, list[tuple[str, str]]]]] = {}
    seen: set[int] = set()
    for sub in SUBPACKAGES:
        package = importlib.import_module(sub)
        direct = [n for n in package.__all__ if not isinstance(getattr(package, n), types.ModuleType)]
        modules = [getattr(package, n) for n in package.__all__ if isinstance(getattr(package, n), types.ModuleType)]
        sections: list[tuple[str, str | None, list[tuple[str, str]]]] = []
        entries = []
        for n in direct:
            obj = getattr(package, n)
            seen.add(id(obj))
            entries.append((_directive(obj), f"{sub}.{n}"))
        if entries:
            sections.append((sub, None, entries))
        for module in modules:
            entries = []
            for n in public_names(module):
                obj = getattr(module, n)
                if isinstance(obj, types.ModuleType) or id(obj) in seen:
                    continue
                seen.add(id(obj))
                entries.append((_directive(obj), f"{module.__name__}.{n}"))
            sections.append((module.__name__, module.__name__, entries))
        out[sub] = sections
    return out


def constant_doc(name: str, obj: Any) -> str | None:
    """The comment that documents a public constant where fnn's source assigns it: a ``#:`` comment or
    the comment lines just above the assignment, else its trailing comment; None when it has none.

    A constant has no docstring of its own, and a re-exported one (``fnn.train.engine.CHUNK``) has no
    comment in the module that exports it, so the source is searched for the module-level assignment
    of that name whose value is this very object."""
    for path in sorted((ROOT / "fnn").rglob("*.py")):
        lineno = _assignments(path).get(name)
        if lineno is None:
            continue
        modname = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        module = sys.modules.get(modname)
        if module is None or getattr(module, name, object()) is not obj:
            continue
        lines = path.read_text().splitlines()
        above = []
        row = lineno - 2
        while row >= 0 and lines[row].lstrip().startswith("#"):
            above.insert(0, lines[row].lstrip().lstrip("#:").strip())
            row -= 1
        if above:
            return " ".join(above)
        _, hash_, trailing = lines[lineno - 1].partition("  # ")
        return trailing.strip() or None if hash_ else None
    return None


MISSING: list[str] = []  # public constants with no comment where they are assigned (a build warning each)


def _data_lines(name: str) -> list[str]:
    obj = _resolve(name)
    value = repr(obj)
    value = value if len(value) <= 80 and "\n" not in value else f"<{type(obj).__module__}.{type(obj).__qualname__}>"
    doc = constant_doc(name.rsplit(".", 1)[1], obj)
    if doc is None:
        MISSING.append(name)
    return [f".. py:data:: {name}", f"   :value: {value}", "", f"   {doc or ''}", ""]


def _attributes_section(doc: str) -> set[str]:
    """The names a Google-style docstring's ``Attributes:`` section lists (``name: ...`` at the entries' indent)."""
    lines = inspect.cleandoc(doc).splitlines()
    names: set[str] = set()
    for i, line in enumerate(lines):
        if line.strip() != "Attributes:":
            continue
        head = len(line) - len(line.lstrip())
        entry = None
        for body in lines[i + 1 :]:
            if not body.strip():
                continue
            indent = len(body) - len(body.lstrip())
            if indent <= head:
                break
            entry = indent if entry is None else entry
            if indent == entry and ":" in body:
                names.add(body.strip().split(":", 1)[0].strip())
    return names


def _class_options(cls: Any) -> list[str]:
    """A class's documented members: the public methods and properties fnn itself defines, on the class or an fnn base
    class (``fit`` of the estimators' base), not those a base class of another package brings (scikit-learn's
    ``set_*_request``, ``get_params``); its fields too, unless its docstring's Attributes section lists them."""
    own: list[str] = []
    inherited: list[str] = []  # from a private fnn base class (the estimators' BaseMLP), which has no entry of its own
    for base in cls.__mro__:
        private = base.__name__.startswith("_") or "._" in base.__module__
        if base is not cls and not private:
            continue
        for k, v in vars(base).items():
            target = getattr(v, "__func__", getattr(v, "fget", getattr(v, "fn", v)))  # fn: scikit-learn's available_if
            if k.startswith("_") or k in own or k in inherited or (not callable(target) and not isinstance(v, property)):
                continue
            if str(getattr(target, "__module__", "")).startswith("fnn"):
                (own if base is cls else inherited).append(k)
    doc = cls.__doc__ or ""
    listed = _attributes_section(doc)  # documented there already
    own, inherited = [m for m in own if m not in listed], [m for m in inherited if m not in listed]
    if "Attributes:" not in doc:
        fields = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else list(getattr(cls, "_fields", ()))
        own = [f for f in fields if not f.startswith("_")] + [m for m in own if m not in fields]
    options = [f"   :members: {', '.join(own)}", "   :undoc-members:"] if own else []
    for m in inherited:  # in the class's body (a directive's content follows its docstring), under the class's name
        kind = "autoproperty" if isinstance(getattr(cls, m, None), property) else "automethod"
        options += ["", f"   .. {kind}:: {m}"]
    return options


def write_api_pages(out: pathlib.Path = API_OUT) -> int:
    """Write one reference page per sub-package under ``out`` (rewritten only where changed, so Sphinx
    rebuilds only those); returns the number of API entries (public objects) documented."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    wanted = set()
    for sub, sections in api_entries().items():
        lines = [
            f"# `{sub}`",
            "",
            f"*{SUBPACKAGES[sub]}*",
            "",
            "Explained in: " + ", ".join(f"{{doc}}`/{page}`" for page in GUIDE_PAGES[sub]) + ".",
            "",
            "```{eval-rst}",
            f".. automodule:: {sub}",
            "   :no-members:",
            "```",
            "",
        ]
        for title, module, entries in sections:
            count += len(entries)
            if module is not None:
                lines += [f"## `{title}`", "", "```{eval-rst}", f".. automodule:: {module}", "   :no-members:", "```", ""]
            elif entries:
                lines += [f"## Exported by `{sub}`", ""]
            lines += ["```{eval-rst}"]
            for directive, name in entries:
                if directive == "autodata":
                    lines += _data_lines(name)
                    continue
                options = _class_options(_resolve(name)) if directive == "autoclass" else []
                lines += [f".. {directive}:: {name}", *options, ""]
            lines += ["```", ""]
        path = out / f"{sub}.md"
        wanted.add(path.name)
        text = "\n".join(lines)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    for stale in out.glob("*.md"):
        if stale.name not in wanted:
            stale.unlink()
    return count


# ---- Sphinx hooks ------------------------------------------------------------------------------------


NOTEBOOKS = BUILD / "notebooks"  # each guide page as a .ipynb (no outputs), for its download link


def write_notebooks(out: pathlib.Path = NOTEBOOKS) -> list[pathlib.Path]:
    """Each guide page (a jupytext MyST notebook) as a ``.ipynb`` under ``out``, outputs empty: what its
    download link serves (the reader runs it)."""
    import jupytext

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in sorted((DOCS / "guide").glob("*.md")):
        if page.stem == "index":
            continue
        target = out / f"{page.stem}.ipynb"
        jupytext.write(jupytext.read(page), target)
        written.append(target)
    return written


def _on_source_read(app: Any, docname: str, source: list[str]) -> None:
    """Under a guide page's title, a line that downloads the page as a notebook (and names its source)."""
    if not docname.startswith("guide/") or docname == "guide/index":
        return
    stem = docname.split("/", 1)[1]
    lines = source[0].split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if at is None:
        return
    link = (
        f"*This page is a notebook:* {{download}}`download it <../_build/notebooks/{stem}.ipynb>` *(.ipynb) and run it, or open "
        f"its source* `docs/guide/{stem}.md` *in Jupyter with jupytext.*"
    )
    source[0] = "\n".join([*lines[: at + 1], "", link, *lines[at + 1 :]])


def _on_builder_inited(app: Any) -> None:
    from sphinx.util import logging

    write_notebooks()
    MISSING.clear()
    _DOCUMENTED.clear()
    app.env.fnn_api_entries = write_api_pages()
    for name in MISSING:
        logging.getLogger(__name__).warning("public constant without a comment: %s", name, type="fnn", subtype="docstring")


def _on_docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """A public function, class or module with no docstring is a warning (an error under ``-W``)."""
    if what in {"function", "class", "module", "exception", "method", "property"} and not any(line.strip() for line in lines):
        from sphinx.util import logging

        logging.getLogger(__name__).warning("public name without a docstring: %s", name, type="fnn", subtype="docstring")


_DOCUMENTED: dict[int, str] = {}  # id(object) -> the name it is documented under (made once per build)


def _key(obj: Any) -> int:
    """An object's identity, a method's being its function's (``fnn.Network.mlp`` is a new bound method
    at each access)."""
    return id(getattr(obj, "__func__", obj))


def _documented(env: Any) -> dict[int, str]:
    if not _DOCUMENTED:
        for name in env.get_domain("py").objects:
            obj = _resolve(name)
            if obj is not None:
                _DOCUMENTED.setdefault(_key(obj), name)
    return _DOCUMENTED


def _resolve(dotted: str) -> Any:
    """The object ``dotted`` names (``fnn.fit``, ``fnn.core.mlp.MLP.forward``), or None."""
    parts = dotted.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # not a module (or one that fails to import): a shorter prefix may be
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _on_missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """``fnn.fit`` (a short name of ``fnn.train.fit``) links to where the object is documented: a
    reference resolves by the object it names, so the guide writes the names users write."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    candidates = [target]
    module, cls = node.get("py:module"), node.get("py:class")
    if module and not target.startswith("fnn"):
        candidates = [*([f"{module}.{cls}.{target}"] if cls else []), f"{module}.{target}", target, f"fnn.{target}"]
    objects = env.get_domain("py").objects
    found = next((c for c in candidates if c in objects), None)  # documented under this name (a dataclass field too)
    for candidate in candidates if found is None else ():
        obj = _resolve(candidate)
        found = None if obj is None else _documented(env).get(_key(obj))
        if found is not None:
            break
    # a bare name from a docstring whose object is documented under another module's name
    # (``default_cache_dir`` in ``fnn.train.compilation_cache``): the one documented name that ends in it
    if found is None and "." not in target:
        matches = [n for n in objects if n.endswith(f".{target}") and n.startswith("fnn.")]
        found = matches[0] if len(matches) == 1 else None
    if found is None:
        return None
    from sphinx.util.nodes import make_refnode

    entry = objects[found]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, found)


def setup(app: Any) -> dict[str, Any]:
    """The Sphinx extension (``docs/conf.py`` loads it)."""
    app.connect("builder-inited", _on_builder_inited)
    app.connect("source-read", _on_source_read)
    app.connect("autodoc-process-docstring", _on_docstring)
    app.connect("missing-reference", _on_missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# ---- the commands ------------------------------------------------------------------------------------


def build(strict: bool = True, out: pathlib.Path = HTML) -> int:
    """``sphinx-build`` docs/ into ``out`` (docs/_build/html); returns its exit code and prints the wall time."""
    start = time.perf_counter()
    doctrees = BUILD / "doctrees" if out == HTML else out / ".doctrees"
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(DOCS), str(out), "-d", str(doctrees)]
    if strict:
        command[3:3] = ["-W", "--keep-going"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if out != HTML:  # a build elsewhere keeps its own execution cache (jupyter-cache is one sqlite file)
        env["FNN_SITE_CACHE"] = str(out / ".jupyter_cache")
    code = subprocess.call(command, cwd=ROOT, env=env)
    pages = len([p for p in (DOCS / "guide").glob("*.md") if p.stem != "index"])
    entries = sum(len(e) for sections in api_entries().values() for _, _, e in sections)
    print(
        f"site build: {time.perf_counter() - start:.1f} s, exit code {code}; {pages} guide pages, {entries} API entries; "
        f"open it with: python -m tools.site open"
    )
    return code


def run_page(path: pathlib.Path) -> int:
    """Execute one guide page as its notebook (jupytext + nbclient, no Sphinx): 0 when every cell runs."""
    import jupytext
    import nbclient

    start = time.perf_counter()
    notebook = jupytext.read(path)
    try:
        nbclient.NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    except nbclient.exceptions.CellExecutionError as e:
        print(f"{path}: a cell raised:\n{e}", file=sys.stderr)
        return 1
    print(f"{path}: {len(notebook.cells)} cells ran in {time.perf_counter() - start:.1f} s")
    return 0


def open_site() -> int:
    index = HTML / "index.html"
    if not index.exists():
        print(f"{index} does not exist: build the site first (python -m tools.site build)", file=sys.stderr)
        return 1
    print(index.as_uri())
    webbrowser.open(index.as_uri())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.site", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "open", "page"])
    parser.add_argument("pages", nargs="*", type=pathlib.Path, help="page: the guide pages to execute")
    parser.add_argument("--no-strict", action="store_true", help="build: warnings do not fail the build")
    parser.add_argument("--out", type=pathlib.Path, default=HTML, help="build: the output directory (default docs/_build/html)")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="build: run every notebook again (the execution cache keys on a page's code, not on fnn's: after changing fnn)",
    )
    args = parser.parse_args(argv)
    if args.fresh:
        import shutil

        out = args.out.resolve()
        for stale in (BUILD / ".jupyter_cache", BUILD / "doctrees", out, out / ".jupyter_cache") if out == HTML else (out,):
            shutil.rmtree(stale, ignore_errors=True)
    if args.command == "page":
        return max((run_page(p) for p in args.pages), default=0)
    return build(not args.no_strict, args.out.resolve()) if args.command == "build" else open_site()


if __name__ == "__main__":
    sys.exit(main())
