"""Sphinx configuration of fnn's documentation site (build it with ``python -m tools.site build``)."""

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the guide's pages run on the CPU, in seconds each

import fnn  # noqa: E402

project = "fnn"
author = "the fnn developers"
copyright = "2026, the fnn developers"
release = version = fnn.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_copybutton",
    "sphinx-mathjax-offline",  # MathJax 3 copied into the site: math renders with no network
    "tools.site",  # the API pages, their cross-references, the missing-docstring check
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "*.json", "README.md"]
source_suffix = {".md": "myst-nb", ".rst": "restructuredtext"}

# MyST: $…$ and $$…$$ math, ::: fences, heading anchors for links between pages
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# the guide's notebooks run when the site builds; a page whose code did not change is not run again
nb_execution_mode = "cache"
nb_execution_cache_path = os.environ.get("FNN_SITE_CACHE", str(ROOT / "docs" / "_build" / ".jupyter_cache"))
nb_execution_timeout = 300
nb_execution_raise_on_error = True  # a cell that raises fails the build
nb_execution_show_tb = True
nb_merge_streams = True

# autodoc: signatures as written, the docstrings' Google sections through napoleon
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# fnn's "Returns:" sections are prose ("(mean, median): ..."),
# not napoleon's "type: description" lines: shown as written, under their heading
napoleon_custom_sections = [("Returns", "prose"), ("Yields", "prose")]
napoleon_use_ivar = False  # a record's "Attributes:" as entries of their own (fields are not also autodoc members)

# every cross-reference must resolve (broken ones fail the build under -W); only the names of other
# packages, whose documentation this site does not link to, and the type aliases of signatures are exempt
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|numpy|np|optax|collections|typing|os|pathlib|sklearn|chex|matplotlib|concurrent)(\..*)?"),
    (r"py:class", r"(Array|ArrayLike|Params|PyTree|Net|N|Any|Callable|Sequence|Mapping|PathLike|OptimizerKey|LossLike)"),
    (r"py:class", r"fnn\.(.*\.)?_.*"),  # private classes in public signatures (the estimators' base, an optimizer key)
]

html_theme = "sphinx_book_theme"
html_title = f"fnn {release}"
html_theme_options = {
    "use_download_button": True,  # each guide page downloads as its notebook source (.md) or .ipynb
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path: list[str] = []
# a first visit has no stored light/dark mode: without a default the theme logs "Got invalid theme mode" to the console
html_context = {"default_mode": "auto"}
html_last_updated_fmt = None
