"""A browser check of the built documentation site: what a reader sees, in headless Chromium.

Run from the repository root, after ``python -m tools.site build``:
     python -m tools.site_check                                   (docs/_build/html; screenshots in docs/_build/screenshots)
     python -m tools.site_check --site /tmp/site --shots /tmp/shots

The site is served over http on 127.0.0.1 (a thread of this process, any free port) and three pages are
opened: a guide page (the first one the guide's index lists), an API page (``fnn.core``) and the results
page. On each, as a reader would see it:

- math is rendered: MathJax has finished, every math element of the page holds MathJax's output (none is an
  error), and no raw TeX is left in the visible text outside code (``$$``, ``\\(``, ``\\[``, ``\\frac`` ...);
- every image has loaded (each one still loading scrolled into view, so lazy images load too);
- nothing went wrong: no console error, no uncaught exception, no failed request or HTTP error, and no
  request to any other host (they are aborted: the site must work with no network, math included);
- every internal link resolves: each ``a[href]`` into the site answers 200 and, where it has a
  ``#fragment``, its target page has an element with that id (or name); and no ``{doc}`` or ``{ref}``
  cross-reference was left unresolved (Sphinx writes one as plain text where the link would be);
- a full-page screenshot is written to ``<shots>/<name>.png``, to look at (``--shot-max-height PX``: the top PX
  pixels only; the whole fnn.core page, 50,000 px and more, takes seconds to capture).

:func:`check_site` returns, per page, its counts and its failures; the command prints them and exits 1 on any
failure. ``tests/docs/test_site_browser.py`` runs it on the built site. Chromium is Debian's (``/usr/bin/chromium``,
or ``FNN_CHROMIUM``), driven by the ``playwright`` package; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import os
import pathlib
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "docs" / "_build" / "html"
SHOTS = ROOT / "docs" / "_build" / "screenshots"
CHROMIUM = os.environ.get("FNN_CHROMIUM", "/usr/bin/chromium")
# headless, no sandbox (root), and nothing of Chromium's own traffic (updates, sync, QUIC probes) on a closed network
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOST = "127.0.0.1"
TIMEOUT_MS = 20_000  # any one browser step (a page load, MathJax's typesetting, an image); the whole check takes seconds
VIEWPORT = {"width": 1280, "height": 900}

GUIDE_FALLBACK = "guide/neuron.html"
API_PAGE = "api/generated/fnn.core.html"
RESULTS_PAGE = "results.html"

# ---- raw TeX in the visible text -------------------------------------------------------------------------------------

# display math ($$...$$, \[...\]) and inline math (\(...\)) whole, or their delimiters alone; a TeX command (a backslash
# and two letters or more: \frac, \sum, \top, \partial, \mathbf ...); inline $...$ math: a single letter ($x$) or
# something with TeX's ^ _ { or a backslash inside. (One letter after a backslash is left alone: "\n" in prose.)
RAW_TEX = re.compile(
    r"\$\$[^$]{0,300}?\$\$|\\\([\s\S]{0,300}?\\\)|\\\[[\s\S]{0,300}?\\\]|\$\$|\\[()\[\]]"
    r"|\\[A-Za-z]{2,}"
    r"|\$[A-Za-z]\$|\$[^$\s][^$\n]{0,200}?[\\^_{][^$\n]{0,200}?\$"
)


def raw_tex(text: str, context: int = 30, limit: int = 10) -> list[str]:
    """The places in ``text`` (a page's visible text, code left out) where TeX shows unrendered: each match (its first
    60 characters) with ``context`` characters either side, at most ``limit`` of them."""
    found = []
    for m in RAW_TEX.finditer(text):
        end = min(m.end(), m.start() + 60)
        excerpt = text[max(0, m.start() - context) : end + context].replace("\n", " ")
        found.append(f"{text[m.start() : end]!r} in '...{excerpt}...'")
        if len(found) == limit:
            break
    return found


# ---- the site's pages and their anchors ------------------------------------------------------------------------------


class _Anchors(html.parser.HTMLParser):
    """The ids (and ``name`` attributes) of an HTML page's elements, and the links of its toctrees, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.toctree_links: list[str] = []
        self._toctree_depth = 0  # > 0 inside a div.toctree-wrapper (counting the divs nested in it)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key] or "")
        if tag == "div":
            if self._toctree_depth:
                self._toctree_depth += 1
            elif "toctree-wrapper" in (a.get("class") or "").split():
                self._toctree_depth = 1
        elif tag == "a" and self._toctree_depth and a.get("href"):
            self.toctree_links.append(a["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._toctree_depth:
            self._toctree_depth -= 1


def parse_anchors(text: str) -> _Anchors:
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    return parser


def guide_page(html_dir: pathlib.Path) -> str:
    """The first page the guide's index lists in its toctree (a path relative to the site), or ``guide/neuron.html``."""
    index = html_dir / "guide" / "index.html"
    if index.exists():
        for href in parse_anchors(index.read_text(encoding="utf-8")).toctree_links:
            parts = urllib.parse.urlsplit(href)
            if not parts.scheme and not parts.netloc and parts.path:
                return urllib.parse.urljoin("guide/index.html", parts.path)
    return GUIDE_FALLBACK


def default_pages(html_dir: pathlib.Path) -> dict[str, str]:
    """The pages checked: name (the screenshot's file name) -> path in the site."""
    return {"guide": guide_page(html_dir), "api": API_PAGE, "results": RESULTS_PAGE}


def is_internal(url: str, base: str) -> bool:
    """Whether ``url`` (absolute, as a browser resolved it) points inside the site served at ``base``."""
    u, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    return u.scheme in ("http", "https") and u.netloc == b.netloc


def site_path(url: str, base: str) -> str:
    """``url`` as a path in the site (``guide/neuron.html#x``), for the report."""
    return url[len(base) :] if url.startswith(base) else url


class _LinkChecker:
    """Fetches each internal page once (HTTP status, and the ids it has), for every link that points at it."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._pages: dict[str, tuple[int | str, set[str]]] = {}

    def fetch(self, url: str) -> tuple[int | str, set[str]]:
        if url not in self._pages:
            ids: set[str] = set()
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_MS / 1000) as r:
                    status: int | str = r.status
                    body = r.read()  # all of it, HTML or not (a response cut short is a broken pipe in the server)
                    if "html" in r.headers.get("Content-Type", ""):
                        ids = parse_anchors(body.decode("utf-8", "replace")).ids
            except urllib.error.HTTPError as e:
                status = e.code
            except (urllib.error.URLError, OSError) as e:
                status = f"{type(e).__name__}: {e}"
            self._pages[url] = (status, ids)
        return self._pages[url]

    def problems(self, hrefs: list[str]) -> list[str]:
        """What is wrong with each of ``hrefs`` (absolute internal URLs), once per distinct href."""
        out = []
        for href in dict.fromkeys(hrefs):
            page, _, fragment = href.partition("#")
            status, ids = self.fetch(page)
            if status != 200:
                out.append(f"broken link: {site_path(href, self.base)} (HTTP {status})")
            elif fragment and urllib.parse.unquote(fragment) not in ids:
                out.append(f"broken link: {site_path(href, self.base)} (no element with id {urllib.parse.unquote(fragment)!r})")
        return out


# ---- serving the site ------------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # not the browser leaving a page mid-transfer
            super().handle_error(request, client_address)


class serve:
    """``with serve(html_dir) as base:`` the directory over http at ``base`` (``http://127.0.0.1:<port>/``), from a
    thread; shut down on leaving, whatever happened."""

    def __init__(self, html_dir: pathlib.Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(html_dir))
        self.server = _Server((HOST, 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://{HOST}:{self.server.server_address[1]}/"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# ---- in the browser --------------------------------------------------------------------------------------------------

# MathJax's typesetting: done when its startup promise settles (a page without MathJax has nothing to wait for)
WAIT_MATHJAX = """async (ms) => {
  const timeout = new Promise((resolve) => setTimeout(() => resolve("timed out"), ms));
  const mj = window.MathJax;
  if (!mj) return "absent";
  if (!mj.startup || !mj.startup.promise) return "not loaded";  // only the configuration: the script did not run
  return await Promise.race([mj.startup.promise.then(() => "done", (e) => "failed: " + e), timeout]);
}"""

# the web fonts (MathJax's among them) loaded, or the time is up
FONTS = """(ms) => Promise.race([document.fonts.ready.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))])"""

# scroll each image that has not loaded yet into view (a lazy one starts loading), then to the bottom and back to the top
SCROLL = """async () => {
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 20)));
  for (const img of Array.from(document.images)) {
    if (!img.complete) { img.scrollIntoView({block: "center"}); await frame(); }
  }
  window.scrollTo(0, document.documentElement.scrollHeight);
  await frame();
  window.scrollTo(0, 0);
  await frame();
}"""

# every image settled (loaded or failed), or the time is up; returns the images that did not load
IMAGES = """async (ms) => {
  const end = Date.now() + ms;
  const images = Array.from(document.images);
  for (const img of images) if (img.loading === "lazy" && !img.complete) img.loading = "eager";
  while (images.some((img) => !img.complete) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return {
    count: images.length,
    broken: images.filter((img) => !(img.complete && img.naturalWidth > 0))
                  .map((img) => (img.getAttribute("src") || "(no src)") + (img.complete ? "" : " (still loading)")),
  };
}"""

MATH = """() => ({
  sources: document.querySelectorAll(".math").length,
  rendered: document.querySelectorAll("mjx-container").length,
  unrendered: Array.from(document.querySelectorAll(".math"))
                   .filter((e) => !e.querySelector("mjx-container") && !e.closest("mjx-container"))
                   .map((e) => e.textContent.trim().slice(0, 80)),
  errors: Array.from(document.querySelectorAll("mjx-merror"))
               .map((e) => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 120)),
})"""

# the text a reader sees, code blocks and inline code left out (hidden by a style for the moment of reading it)
VISIBLE_TEXT = """() => {
  const style = document.createElement("style");
  style.textContent = "pre, code, kbd, samp, textarea, mjx-container { display: none !important; }";
  document.head.appendChild(style);
  try { return document.body.innerText; } finally { style.remove(); }
}"""

# the links (as the browser resolved them), and the cross-references Sphinx could not resolve: a {doc} or {ref}
# to a page or label that does not exist is written as its bare target, in a span where the link would be
LINKS = """() => ({
  hrefs: Array.from(document.querySelectorAll("a[href]")).map((a) => a.href).filter((href) => /^https?:/.test(href)),
  unresolved: Array.from(document.querySelectorAll(".xref.std-doc, .xref.std-ref"))
                   .filter((e) => !e.closest("a")).map((e) => e.textContent.trim()),
})"""


def _check_page(
    context: Any, base: str, path: str, shot: pathlib.Path, links: _LinkChecker, shot_max_height: int | None
) -> dict[str, Any]:
    failures: list[str] = []
    failed_urls: set[str] = set()
    console: list[Any] = []
    url = base + path

    page = context.new_page()
    page.on("console", lambda m: console.append(m) if m.type == "error" else None)
    page.on("pageerror", lambda e: failures.append(f"page error: {e}"))

    def on_failed(request: Any) -> None:
        if request.url not in failed_urls:
            failed_urls.add(request.url)
            failures.append(f"failed request: {site_path(request.url, base)} ({request.failure})")

    def on_response(response: Any) -> None:
        if response.status >= 400 and response.url not in failed_urls:
            failed_urls.add(response.url)
            failures.append(f"HTTP {response.status}: {site_path(response.url, base)}")

    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    try:
        page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
        mathjax = page.evaluate(WAIT_MATHJAX, TIMEOUT_MS)
        page.evaluate(FONTS, TIMEOUT_MS)
        page.evaluate(SCROLL)
        images = page.evaluate(IMAGES, TIMEOUT_MS)
        height = page.evaluate("() => document.documentElement.scrollHeight")
        clip = (
            {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": shot_max_height}
            if shot_max_height and height > shot_max_height
            else None
        )
        page.screenshot(path=str(shot), full_page=True, clip=clip, timeout=TIMEOUT_MS)
        math = page.evaluate(MATH)
        text = page.evaluate(VISIBLE_TEXT)
        found = page.evaluate(LINKS)
    except Exception as e:  # a page that does not load or a step that times out: a failure of this page, not a crash
        failures.append(f"could not check the page: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
        return {
            "path": path,
            "math": 0,
            "math_sources": 0,
            "images": 0,
            "links": 0,
            "external_links": 0,
            "height": 0,
            "failures": failures,
        }
    finally:
        page.close()

    if math["sources"]:
        if mathjax != "done":
            failures.append(f"MathJax did not typeset the page's {math['sources']} math elements: {mathjax}")
        if math["unrendered"]:
            failures.append(
                f"{len(math['unrendered'])} of {math['sources']} math elements not rendered, e.g. {math['unrendered'][0]!r}"
            )
    elif mathjax not in ("absent", "done"):
        failures.append(f"MathJax: {mathjax}")
    failures += [f"MathJax error: {e}" for e in math["errors"]]
    tex = raw_tex(text)
    failures += [f"raw TeX in the text: {t}" for t in tex]
    more = sum(1 for _ in RAW_TEX.finditer(text)) - len(tex)
    if more:
        failures.append(f"raw TeX in the text: {more} more places")
    failures += [f"image did not load: {src}" for src in images["broken"]]
    for m in console:  # a resource that failed is reported once, as its request
        where = (m.location or {}).get("url", "")
        if not (m.text.startswith("Failed to load resource") and where in failed_urls):
            failures.append(f"console error: {m.text}" + (f" ({site_path(where, base)})" if where else ""))
    hrefs = found["hrefs"]
    internal = [h for h in hrefs if is_internal(h, base)]
    failures += [f"unresolved cross-reference (shown as plain text): {t}" for t in dict.fromkeys(found["unresolved"])]
    failures += links.problems(internal)
    return {
        "path": path,
        "math": math["rendered"],
        "math_sources": math["sources"],
        "images": images["count"],
        "links": len(internal),
        "external_links": len(hrefs) - len(internal),
        "height": height,
        "failures": failures,
    }


def check_site(
    html_dir: pathlib.Path, shots: pathlib.Path, pages: dict[str, str] | None = None, shot_max_height: int | None = None
) -> dict[str, dict[str, Any]]:
    """Open ``pages`` (name -> path in the site; by default the guide, API and results pages) of the site built in
    ``html_dir`` in headless Chromium, check what a reader sees and write ``<shots>/<name>.png``.

    Each page is opened as a first visit (a fresh browser context: no storage, no cache). The screenshot is the
    whole page, or its top ``shot_max_height`` pixels where given (a long API page takes seconds to capture).

    Returns name -> ``{"path", "math" (MathJax's rendered elements), "math_sources" (the page's math elements),
    "images", "links" (internal links checked), "external_links" (not followed), "height" (the page's, in CSS
    pixels), "failures" (a list of strings), "screenshot", "seconds"}``.
    """
    from playwright.sync_api import sync_playwright

    html_dir, shots = pathlib.Path(html_dir), pathlib.Path(shots)
    pages = default_pages(html_dir) if pages is None else pages
    shots.mkdir(parents=True, exist_ok=True)
    report: dict[str, dict[str, Any]] = {}
    with serve(html_dir) as base, sync_playwright() as pw:
        links = _LinkChecker(base)
        external: list[str] = []

        def route(r: Any) -> None:  # the site must need no network: any other host is aborted, and counted
            u = urllib.parse.urlsplit(r.request.url)
            if u.scheme in ("http", "https", "ws", "wss") and u.hostname != HOST:
                external.append(r.request.url)
                r.abort("blockedbyclient")
            else:
                r.fallback()

        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        try:
            for name, path in pages.items():
                start = time.perf_counter()
                external.clear()
                context = browser.new_context(viewport=VIEWPORT, service_workers="block")
                try:
                    context.set_default_timeout(TIMEOUT_MS)
                    context.route("**/*", route)
                    result = _check_page(context, base, path, shots / f"{name}.png", links, shot_max_height)
                finally:
                    context.close()
                # an external request is reported as that (its abort also fires requestfailed: not twice)
                result["failures"] = [f"request to another host (aborted): {u}" for u in dict.fromkeys(external)] + [
                    f for f in result["failures"] if not (f.startswith("failed request: ") and any(u in f for u in external))
                ]
                result["screenshot"] = str(shots / f"{name}.png")
                result["seconds"] = round(time.perf_counter() - start, 2)
                report[name] = result
        finally:
            browser.close()
    return report


def format_report(report: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, r in report.items():
        verdict = "ok" if not r["failures"] else f"{len(r['failures'])} FAILURES"
        lines.append(
            f"{name:8} {r['path']}: {verdict}; math {r['math']} rendered of {r['math_sources']}, images {r['images']}, "
            f"internal links {r['links']} ({r['external_links']} external, not followed); {r['seconds']} s; {r['screenshot']}"
        )
        lines += [f"    - {f}" for f in r["failures"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.site_check", description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=pathlib.Path, default=HTML, help="the built site (default docs/_build/html)")
    parser.add_argument(
        "--shots", type=pathlib.Path, default=SHOTS, help="where the screenshots go (default docs/_build/screenshots)"
    )
    parser.add_argument(
        "--shot-max-height",
        type=int,
        default=None,
        metavar="PX",
        help="screenshots: the top PX pixels of a longer page (default: whole pages)",
    )
    args = parser.parse_args(argv)
    if not (args.site / "index.html").exists():
        print(f"{args.site / 'index.html'} does not exist: build the site first (python -m tools.site build)", file=sys.stderr)
        return 1
    start = time.perf_counter()
    report = check_site(args.site, args.shots, shot_max_height=args.shot_max_height)
    print(format_report(report))
    failed = sum(len(r["failures"]) for r in report.values())
    print(f"site check: {len(report)} pages, {failed} failures, {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
