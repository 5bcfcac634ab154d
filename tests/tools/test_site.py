"""tools/site.py: the API reference covers every public name once, constants are documented from their source
comments, and a short name (``fnn.fit``) resolves to where its object is documented. The site's build itself runs
in CI (``python -m tools.site build``, warnings as errors) and tests/docs/test_site_browser.py checks the result."""

import importlib
import pathlib
import types

import pytest

import fnn
import fnn.sklearn
from tools import site


def _documented() -> dict[str, str]:
    """dotted name -> directive, over every sub-package's page."""
    return {name: d for sections in site.api_entries().values() for _, _, entries in sections for d, name in entries}


def test_every_public_name_of_every_subpackage_is_documented_once():
    documented = _documented()
    objects = [id(site._resolve(n)) for n in documented]
    assert len(objects) == len(set(objects)), "an object documented twice"
    ids = set(objects)
    for sub in site.SUBPACKAGES:
        package = importlib.import_module(sub)
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, types.ModuleType):
                for inner in site.public_names(obj):
                    value = getattr(obj, inner)
                    if not isinstance(value, types.ModuleType):
                        assert id(value) in ids, f"{obj.__name__}.{inner} is not in the reference"
            else:
                assert id(obj) in ids, f"{sub}.{name} is not in the reference"
    # the names users reach from fnn itself are among them (documented where they live)
    for name in ("MLP", "fit", "fit_many", "compare_gradients", "check_derivation", "save", "Network"):
        assert id(getattr(fnn, name)) in ids
    assert documented["fnn.sklearn.MLPClassifier"] == "autoclass"
    assert documented["fnn.train.engine.CHUNK"] == "autodata"


def test_constants_are_listed_and_documented_from_their_source_comments():
    import fnn.core.layer
    import fnn.runs.checkpoint
    import fnn.train.engine

    assert "SMALL" in site.public_names(fnn.core.layer)  # a module without __all__: its UPPER_CASE names count
    # a comment block above the assignment, in the module that assigns it (engine re-exports CHUNK)
    assert site.constant_doc("CHUNK", fnn.train.engine.CHUNK).startswith("Rows of history the compiled loop holds")
    # a trailing comment
    assert "left over from a killed save" in site.constant_doc("STALE_AFTER_S", fnn.runs.checkpoint.STALE_AFTER_S)
    # a value that no fnn module assigns under that name has no comment to find
    assert site.constant_doc("CHUNK", object()) is None


def test_api_pages_are_written_once_and_left_alone_when_unchanged(tmp_path):
    count = site.write_api_pages(tmp_path)
    pages = sorted(p.name for p in tmp_path.glob("*.md"))
    assert pages == sorted(f"{s}.md" for s in site.SUBPACKAGES)
    assert count == len(_documented()) > 150
    text = (tmp_path / "fnn.core.md").read_text()
    assert ".. autofunction:: fnn.core.activations.relu_grad" in text and ".. automodule:: fnn.core.activations" in text
    assert "Explained in: {doc}`/guide/neuron`" in text  # the reference links back to the guide
    for pages in site.GUIDE_PAGES.values():
        assert all((site.DOCS / f"{page}.md").is_file() for page in pages)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    (tmp_path / "stale.md").write_text("# a page of a sub-package that no longer exists")
    assert site.write_api_pages(tmp_path) == count
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # rewritten only where changed; stale removed


def test_class_members_are_fnns_own_not_scikit_learns():
    (members, *_) = site._class_options(fnn.sklearn.MLPClassifier)
    assert "partial_fit" in members and "set_fit_request" not in members and "get_params" not in members
    # a record without an Attributes section lists its fields; one with it leaves them to the docstring
    assert "leaves" in site._class_options(fnn.GradientReport)[0]
    assert "train_state" not in site._class_options(fnn.FitState)[0]
    assert site._attributes_section(fnn.FitState.__doc__) >= {"train_state", "key", "epoch", "stop"}
    assert "init," in site._class_options(fnn.MLP)[0]  # named in an Args-like line, but not under Attributes


@pytest.mark.parametrize(
    ("dotted", "expected"),
    [("fnn.fit", fnn.fit), ("fnn.core.mlp.MLP.forward", fnn.MLP.forward), ("fnn.train.engine", fnn.train.engine)],
)
def test_resolve_names_the_object(dotted, expected):
    assert site._resolve(dotted) is expected


@pytest.mark.parametrize("dotted", ["fnn.no_such_name", ".relative", "not a name", "fnn..fit"])
def test_resolve_gives_none_for_what_is_not_there(dotted):
    assert site._resolve(dotted) is None


def _docs_extra() -> None:
    """The notebook tools are in the `docs` extra (CI's main tier has it; the lowest-versions tier installs `test` only)."""
    for module in ("jupytext", "nbclient"):
        pytest.importorskip(module, reason=f"the site's tools: {module} is in the docs extra (pip install -e '.[docs]')")


def test_build_and_page_commands_report_a_missing_site_or_a_failing_cell(tmp_path, capsys, monkeypatch):
    _docs_extra()
    monkeypatch.setattr(site, "HTML", tmp_path / "nothing")
    assert site.open_site() == 1 and "build the site first" in capsys.readouterr().err
    page = tmp_path / "p.md"
    page.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n# p\n\n"
        "```{code-cell} ipython3\nassert 1 + 1 == 3, 'the claim fails'\n```\n"
    )
    assert site.run_page(pathlib.Path(page)) == 1
    assert "the claim fails" in capsys.readouterr().err


def test_each_guide_page_downloads_as_the_same_notebook(tmp_path):
    _docs_extra()
    import jupytext

    written = site.write_notebooks(tmp_path)
    pages = sorted(p for p in (site.DOCS / "guide").glob("*.md") if p.stem != "index")
    assert [w.stem for w in written] == [p.stem for p in pages] and len(pages) >= 9
    for page, nb in zip(pages, written):
        code = lambda n: [c.source for c in n.cells if c.cell_type == "code"]
        assert code(jupytext.read(nb)) == code(jupytext.read(page)) != []
    source = ["---\nkernelspec: {}\n---\n\n# The neuron\n\ntext"]
    site._on_source_read(None, "guide/neuron", source)
    assert source[0].startswith("---\nkernelspec: {}\n---\n\n# The neuron\n\n*This page is a notebook:*")
    assert "<../_build/notebooks/neuron.ipynb>" in source[0]
    other = ["# Results\n"]
    site._on_source_read(None, "results", other)
    assert other == ["# Results\n"]
