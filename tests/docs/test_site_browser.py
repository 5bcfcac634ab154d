"""The documentation site as a reader sees it, in headless Chromium (tools/site_check.py).

The first test opens the built site (docs/_build/html: ``python -m tools.site build``) and checks a guide page, the
``fnn.core`` API page and the results page: math rendered, images loaded, no console error, no request leaving the
machine, every internal link resolving. Where the site is not built, or Chromium or playwright is missing, it skips,
unless FNN_REQUIRE_SITE=1 (set where CI builds the site): then it fails. The root conftest.py expects that skip
only without FNN_REQUIRE_SITE=1.

The other tests need no built site: the checker's pieces on samples, and the checker itself on a tiny site with
one of each defect, which it must report (a checker that finds nothing would otherwise pass on any site).
"""

import importlib.util
import os
import pathlib
import shutil
import struct
import zlib

import pytest

from tools import site_check

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("FNN_REQUIRE_SITE") == "1"
SKIP_PREFIX = "browser check of the site: "  # the root conftest.py's EXPECTED_SKIPS matches it


def _missing(reason: str) -> None:
    """Skip (or, under FNN_REQUIRE_SITE=1, fail) for want of something the browser check needs."""
    if REQUIRED:
        pytest.fail(f"{SKIP_PREFIX}{reason} (FNN_REQUIRE_SITE=1)")
    pytest.skip(f"{SKIP_PREFIX}{reason} (FNN_REQUIRE_SITE=1 makes this a failure)")


def _need_browser() -> None:
    if importlib.util.find_spec("playwright") is None:
        _missing("could not import playwright (pip install playwright; Chromium itself is the system's)")
    if not (shutil.which(site_check.CHROMIUM) or pathlib.Path(site_check.CHROMIUM).is_file()):
        _missing(f"no Chromium at {site_check.CHROMIUM} (apt-get install chromium, or set FNN_CHROMIUM)")


# ---- the built site ------------------------------------------------------------------------------------------------


def test_the_built_site_renders_math_images_and_links(tmp_path):
    if not (site_check.HTML / "index.html").exists():
        _missing(f"no built site at {site_check.HTML.relative_to(ROOT)} (python -m tools.site build)")
    _need_browser()
    # the top of each page is enough to look at here (the fnn.core page is 50,000 px tall: seconds to capture whole);
    # `python -m tools.site_check` writes whole pages to docs/_build/screenshots
    report = site_check.check_site(site_check.HTML, tmp_path, shot_max_height=4000)
    summary = site_check.format_report(report)
    assert set(report) == {"guide", "api", "results"}
    for name, page in report.items():
        assert page["failures"] == [], f"{name}: {page['path']}\n{summary}"
        assert page["links"] > 0, summary
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert report["guide"]["images"] > 0, f"the guide page shows no image\n{summary}"
    assert report["results"]["images"] > 0, f"the results page shows no image\n{summary}"
    assert report["guide"]["math"] > 0, f"the guide page shows no math\n{summary}"
    assert report["api"]["math"] > 0, f"the API page shows no math\n{summary}"


# ---- the checker's pieces, no browser ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "the loss $$E = x$$ here",
        r"inline \(x\) math",
        r"display \[x\] math",
        r"a fraction \frac{a}{b}",
        r"a sum \sum_i x_i",
        r"w^\top x + b",
        r"the gradient \partial E",
        r"bold \mathbf{W}",
        "a single-letter $x$ left as it was typed",
        "a subscript $w_1$ left as it was typed",
    ],
)
def test_raw_tex_is_found(text):
    assert site_check.raw_tex(text), text


@pytest.mark.parametrize(
    "text",
    [
        "plain prose: the neuron y = f(wᵀx + b), x ∈ ℝⁿ, σ²_B, ∂E/∂W = δᵀh",
        "it costs $5 and $10",
        "a 100 $ fee, brackets (a) [b] {c}",
        r"a newline escape \n and a tab \t in prose",
        "MathJax's output: y=f(w⊤x+b)",
    ],
)
def test_raw_tex_leaves_rendered_text_alone(text):
    assert site_check.raw_tex(text) == []


def test_raw_tex_reports_where():
    (found,) = site_check.raw_tex("x" * 100 + r" \frac{1}{2} " + "y" * 100)
    assert "\\\\frac" in found and "xxx" in found and "yyy" in found and len(found) < 120


def test_the_guide_page_is_the_first_in_the_guides_toctree(tmp_path):
    assert site_check.guide_page(tmp_path) == "guide/neuron.html"  # no guide index: the fallback
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "index.html").write_text(
        '<nav><a href="../index.html">home</a></nav><div class="toctree-wrapper compound"><ul>'
        '<li><a class="reference internal" href="first.html#top">First</a></li>'
        '<li><a class="reference internal" href="second.html">Second</a></li></ul></div>'
    )
    assert site_check.guide_page(tmp_path) == "guide/first.html"
    assert site_check.default_pages(tmp_path) == {
        "guide": "guide/first.html",
        "api": site_check.API_PAGE,
        "results": "results.html",
    }


def test_anchors_links_and_the_link_checker(tmp_path):
    anchors = site_check.parse_anchors('<h2 id="a">A</h2><a name="b"></a><p id="c d">x</p>')
    assert anchors.ids == {"a", "b", "c d"}
    base = "http://127.0.0.1:8000/"
    assert site_check.is_internal(base + "guide/x.html#y", base)
    assert not site_check.is_internal("http://127.0.0.1:8001/x.html", base)
    assert not site_check.is_internal("https://github.com/x", base)
    assert not site_check.is_internal("mailto:someone@example.org", base)
    (tmp_path / "page.html").write_text('<h2 id="there">T</h2><span id="with space"></span>')
    (tmp_path / "notes.txt").write_text("not html")
    with site_check.serve(tmp_path) as url:
        links = site_check._LinkChecker(url)
        ok = [url + "page.html", url + "page.html#there", url + "page.html#with%20space", url + "page.html#", url + "notes.txt"]
        assert links.problems(ok) == []
        bad = [url + "missing.html", url + "page.html#nowhere", url + "notes.txt#x"]
        assert links.problems(bad + bad) == [
            "broken link: missing.html (HTTP 404)",
            "broken link: page.html#nowhere (no element with id 'nowhere')",
            "broken link: notes.txt#x (no element with id 'x')",
        ]


def test_the_expected_skip_is_expected_only_without_fnn_require_site():
    spec = importlib.util.spec_from_file_location("fnn_root_conftest_site", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    nodeid = "tests/docs/test_site_browser.py::test_the_built_site_renders_math_images_and_links"
    reason = f"Skipped: {SKIP_PREFIX}no built site at docs/_build/html (python -m tools.site build)"
    assert conftest.unexpected_skip(nodeid, reason) is REQUIRED
    assert conftest.unexpected_skip(nodeid, "Skipped: could not import 'jax'")  # any other skip of this file is not


# ---- the checker on a tiny site with one of each defect --------------------------------------------------------------


def _png(width: int = 4, height: int = 3) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


GOOD = """<!DOCTYPE html><html><head><title>good</title></head><body>
<h1 id="top">A good page</h1>
<p>Prose with no TeX: y = f(wᵀx + b).</p>
<pre>code may hold $$x$$ and \\frac{1}{2} and \\(x\\): not a rendering fault</pre>
<p>inline <code>\\sum_code</code> too</p>
<img src="ok.png" alt="near">
<div style="height: 3000px"></div>
<img src="img/ok.png" loading="lazy" alt="far below: loads once scrolled to">
<a href="bad.html"><span class="xref std std-doc">bad</span></a>
<a href="#top">top</a> <a href="good.html#named">named</a> <a href="img/">a folder</a>
<a href="https://example.org/elsewhere">not followed</a> <a href="mailto:a@example.org">mail</a>
<a name="named"></a>
</body></html>"""

BAD = """<!DOCTYPE html><html><head><title>bad</title>
<script>window.MathJax = {};</script>
<script defer src="https://cdn.example.org/mathjax/tex-chtml.js"></script>
</head><body>
<h1>A bad page</h1>
<p>Raw display math: $$E = \\frac{1}{2} x^2$$.</p>
<p>A command alone: \\sum_i x_i.</p>
<p>A math element MathJax never saw: <span class="math">\\(y\\)</span></p>
<img src="missing.png" alt="missing">
<p>Explained in <span class="xref std std-doc">guide/unwritten</span>.</p>
<a href="nowhere.html">nowhere</a> <a href="good.html#no-such-id">no such id</a> <a href="good.html#top">fine</a>
<script>console.error("boom from the page");</script>
<script>throw new Error("kaboom");</script>
</body></html>"""


def test_the_checker_reports_each_defect_of_a_broken_site(tmp_path):
    _need_browser()
    site, shots = tmp_path / "site", tmp_path / "shots"
    (site / "img").mkdir(parents=True)
    (site / "ok.png").write_bytes(_png())
    (site / "img" / "ok.png").write_bytes(_png())
    (site / "img" / "index.html").write_text("<p>a folder's index</p>")
    (site / "good.html").write_text(GOOD)
    (site / "bad.html").write_text(BAD)
    report = site_check.check_site(site, shots, {"good": "good.html", "bad": "bad.html", "absent": "absent.html"})

    good = report["good"]
    assert good["failures"] == [], good["failures"]
    assert (good["images"], good["links"], good["external_links"]) == (2, 4, 1)  # mailto: is not a link to follow
    assert good["math"] == good["math_sources"] == 0
    assert (shots / "good.png").stat().st_size > 1000 and good["screenshot"] == str(shots / "good.png")

    bad = report["bad"]["failures"]
    text = "\n".join(bad)

    def one(prefix: str, *parts: str) -> None:
        hits = [f for f in bad if f.startswith(prefix) and all(p in f for p in parts)]
        assert len(hits) == 1, f"{prefix} {parts}: {hits}\nall failures:\n{text}"

    one("request to another host (aborted): https://cdn.example.org/mathjax/tex-chtml.js")
    one("MathJax did not typeset", "not loaded")
    one("1 of 1 math elements not rendered", "y")
    one("raw TeX in the text: '$$E = \\\\frac{1}{2} x^2$$'")
    one("raw TeX in the text: '\\\\sum'")
    one("raw TeX in the text: '\\\\(y\\\\)'")
    assert len([f for f in bad if f.startswith("raw TeX")]) == 3
    one("image did not load: missing.png")
    one("HTTP 404: missing.png")
    one("console error: boom from the page")
    one("page error: ", "kaboom")
    one("broken link: nowhere.html (HTTP 404)")
    one("broken link: good.html#no-such-id (no element with id 'no-such-id')")
    one("unresolved cross-reference (shown as plain text): guide/unwritten")
    assert "good.html#top" not in text and "sum_code" not in text
    assert "failed request" not in text  # the aborted CDN request is reported once, as a request to another host
    assert report["bad"]["images"] == 1 and report["bad"]["math_sources"] == 1 and report["bad"]["math"] == 0

    assert report["absent"]["failures"] == ["HTTP 404: absent.html"]
