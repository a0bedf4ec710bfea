"""The book as its readers get it: built strictly, served on localhost, read in Chromium.

The build runs once per session (`make book`: the chapters in parallel, then jupyter-book
with -W -n --keep-going, so a failing cell or a broken reference fails it); conftest.py
starts it in the background at the start of the session and runs these tests last. The browser part drives Debian's Chromium
through every page with Playwright. CI installs Chromium; elsewhere the browser tests skip
when /usr/bin/chromium is missing, and fail instead when CI is set.
"""
import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import BOOK_LOG, start_book_build

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="session")
def built_book(request):
    """The book, built by `make book` (started in the background by conftest.py)."""
    build = start_book_build(request.config)
    build.wait()
    log = BOOK_LOG.read_text(errors="replace")
    assert build.returncode == 0, "book build failed:\n" + log[-6000:]
    assert "build succeeded" in log, log[-3000:]
    return HTML


def toc_pages():
    """Page paths in reading order, from _toc.yml (root first)."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part["chapters"]]
    return pages


def test_build_is_strict_and_complete(built_book):
    for page in toc_pages():
        assert (built_book / f"{page}.html").exists(), page
    # no cell error and no placeholder made it into the book
    for page in toc_pages():
        text = (built_book / f"{page}.html").read_text(encoding="utf-8")
        assert "Traceback (most recent call last)" not in text, page
        assert "PLACEHOLDER" not in text, f"{page} is still a placeholder"


def test_mathjax_is_served_locally(built_book):
    assert (built_book / "_mathjax" / "tex-chtml.js").exists()
    assert not list((built_book / "_static").rglob("tex-chtml.js")), "MathJax must stay out of _static"
    for html in built_book.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert "cdn.jsdelivr.net" not in text and "mathjax@3" not in text.lower(), html


@pytest.fixture(scope="session")
def server(built_book):
    handler = functools.partial(QuietHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass



ABORTED_BY_NAVIGATION = "net::ERR_ABORTED"  # Chromium's error code, as Playwright reports it


def visit(browser, url, *, leaving=False):
    """Open url; return (page, problems) where problems lists console errors and bad requests.

    leaving: the test will click away from the page, which makes Chromium abort what the page
    still had in flight (its favicon, a font): those aborts are not counted.
    """
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    host = urlparse(url).netloc
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def on_failed(r):
        if not (leaving and r.failure == ABORTED_BY_NAVIGATION):
            problems.append(f"request failed ({r.failure}): {r.url}")

    page.on("requestfailed", on_failed)

    def on_response(r):
        if r.status >= 400:
            problems.append(f"HTTP {r.status}: {r.url}")

    def on_request(r):
        if urlparse(r.url).scheme in ("http", "https") and urlparse(r.url).netloc != host:
            problems.append(f"external request: {r.url}")

    page.on("response", on_response)
    page.on("request", on_request)
    page.goto(url, wait_until="networkidle")
    return page, problems


WIDE_EQUATIONS = """() => [...document.querySelectorAll('mjx-container[display="true"]')]
    .filter(c => {
        const m = c.querySelector('mjx-math');
        return m && m.getBoundingClientRect().width > c.getBoundingClientRect().width + 1;
    }).map(c => (c.closest('.math') || c).textContent.trim().slice(0, 80))"""


def neighbours(page_path):
    """(previous, next) page paths of page_path in the toc's reading order (None at the ends)."""
    pages = toc_pages()
    i = pages.index(page_path)
    return (pages[i - 1] if i else None), (pages[i + 1] if i + 1 < len(pages) else None)


def link_target(page, selector):
    """The page path an <a> of the page points to (no .html, no #anchor), or None if absent."""
    hrefs = page.eval_on_selector_all(selector, "els => els.map(e => e.href)")
    return urlparse(hrefs[0]).path.lstrip("/").removesuffix(".html") if hrefs else None


@pytest.mark.parametrize("page_path", toc_pages())
def test_every_page_reads_cleanly(browser, server, page_path):
    """One visit per page: it loads without an error or an outside request, its math is
    typeset and no display equation is wider than the text (a wider one is cut off at its
    right edge), its images load, it has the table of contents, and its previous and next
    links are its neighbours in the toc."""
    page, problems = visit(browser, f"{server}/{page_path}.html")
    try:
        if page.locator(".math").count():
            page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0",
                                   timeout=20000)
            unrendered = page.evaluate(
                "() => [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')"
                " && !e.closest('mjx-container')).length")
            assert unrendered == 0, f"{unrendered} math elements not typeset"
            wide = page.evaluate(WIDE_EQUATIONS)
            assert not wide, f"display equations wider than the text: {wide}"
        broken = page.evaluate(
            "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert not broken, f"images not loaded: {broken}"
        assert not problems, "\n".join(problems)
        assert page.locator("nav.bd-docs-nav a").count() >= len(toc_pages()) - 1, "table of contents missing"
        before, after = neighbours(page_path)
        assert link_target(page, "a.left-prev") == before, "the previous link is not the toc's"
        assert link_target(page, "a.right-next") == after, "the next link is not the toc's"
    finally:
        page.close()


@pytest.mark.parametrize("pair", [0, -2], ids=["first", "last"])
def test_next_and_previous_links_take_the_reader_there(browser, server, pair):
    """Every page's links are checked above; here a reader clicks them, at both ends."""
    here, there = toc_pages()[pair], toc_pages()[pair + 1]
    page, problems = visit(browser, f"{server}/{here}.html", leaving=True)
    try:
        # the navigation itself is what is checked: wait for the URL, not for the network
        # to go quiet (the page's own loading was checked by visit)
        page.locator("a.right-next").first.click()
        page.wait_for_url(re.compile(rf".*/{re.escape(there)}\.html(#.*)?$"), timeout=30_000)
        page.locator("a.left-prev").first.click()
        page.wait_for_url(re.compile(rf".*/{re.escape(here)}\.html(#.*)?$"), timeout=30_000)
        assert not problems, "\n".join(problems)
    finally:
        page.close()


def test_sidebar_toc_links_open_every_chapter(browser, server):
    page, problems = visit(browser, f"{server}/{toc_pages()[0]}.html")
    try:
        hrefs = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal", "els => els.map(e => e.href)")
        opened = {urlparse(h).path.lstrip("/").removesuffix(".html") for h in hrefs}
        assert set(toc_pages()[1:]) <= opened, set(toc_pages()[1:]) - opened
    finally:
        page.close()


def test_search_finds_forget_gate(browser, server):
    page, problems = visit(browser, f"{server}/search.html?q=forget+gate")
    try:
        page.wait_for_selector("#search-results ul.search li", timeout=20000)
        results = page.locator("#search-results ul.search li a").all_inner_texts()
        assert results, "no search results for 'forget gate'"
        assert any("LSTM" in r or "Long short-term" in r for r in results), results
        assert not problems, "\n".join(problems)
    finally:
        page.close()


@pytest.mark.parametrize("page_path", ["book/02_bptt", "book/06_lstm"])
def test_screenshots_of_two_chapters(browser, server, page_path):
    """Full-page screenshots for a human to look at (written to _build/screenshots)."""
    page, _ = visit(browser, f"{server}/{page_path}.html")
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        out = SHOTS / (re.sub(r"\W", "_", page_path) + ".png")
        page.screenshot(path=str(out), full_page=True)
        assert out.stat().st_size > 10_000
    finally:
        page.close()
