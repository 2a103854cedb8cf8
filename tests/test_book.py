"""The book as a reader gets it: `kdl run` executes chapters, keeps their sources, builds the site,
and headless Chromium opens the site with every non-`file:` request blocked.

On every backend: a small fixture chapter runs through `kdl run`; the executed notebook must keep
every source cell, and neither it nor the console may carry library log lines (TensorFlow's absl
start-up lines appear on every backend, because keras.utils.set_random_seed imports TensorFlow).

On the TensorFlow pass only: `kdl run` executes the real chapter 02 and a fixture chapter that
fails, builds `html/` and the browser checks it. The site is rendered from the notebooks' JSON and
the Sphinx configuration, neither of which depends on the backend, so building it three times
would only repeat the check (about half a minute on the 2-core CI machine); TensorFlow is the
backend of `make book` and the one whose start-up lines reach a chapter's first cell, so its pass
is the strictest test of "no log lines in the page".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE_BACKEND = "tensorflow"
REAL_CHAPTER = ROOT / "chapters" / "02_losses_information_theory.ipynb"
SCREENSHOTS = ROOT / "_build" / "screenshots"
# absl's pre-init banner, its "I0000 00:00:..." line prefix, and TensorFlow's usual start-up lines.
LOG_LINE = re.compile(r"absl::InitializeLog|^[IWEF]\d{4} \d\d:\d\d:\d\d|oneDNN custom operations|"
                      r"cpu_feature_guard|rebuild TensorFlow with", re.MULTILINE)
WARNING_TEXT = "WARNED BY THE FIXTURE"  # the source splits it, so only the output can show it


def _fixture_notebook(path: Path) -> Path:
    """A short chapter that fails on purpose: title, math, setup, a warning, a solution, a crash."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        md("# 99 · A chapter that fails\n\nLearning goals: none; it tests the book. "
           "Inline $a^2 + b^2 = c^2$ and displayed:\n\n$$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$$"),
        code("import kdl\n\nkdl.setup(seed=0)"),
        code("import warnings\n\nwarnings.warn('WARNED ' + 'BY THE FIXTURE')\n"
             "print('after the warning')"),
        md("## Exercises\n\n1. Print the answer."),
        code("print('the folded answer', 6 * 7)", metadata={"tags": ["solution"]}),
        code("raise RuntimeError('broken on purpose')"),
        code("print('never reached')"),
        md("## Glossary\n\n| English term | 中文 术语 | definition |\n|---|---|---|\n"
           "| fixture | 测试夹具 | the prepared input of a test |"),
    ]
    nb.metadata.update(language_info={"name": "python"}, kernelspec={
        "name": "python3", "display_name": "Python 3", "language": "python"})
    nbformat.write(nb, path)
    return path


def _kdl_run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a reader has it
    return subprocess.run([sys.executable, "-m", "kdl", "run", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def book_run(tmp_path_factory):
    """`kdl run` on the fixture chapter (and, on the site backend, chapter 02 and the site)."""
    backend = keras.backend.backend()
    tmp = tmp_path_factory.mktemp("book")
    fixture = _fixture_notebook(tmp / "99_fails.ipynb")
    build = tmp / "_build"
    if backend == SITE_BACKEND:
        chapters, flags = [REAL_CHAPTER, fixture], []
    else:
        chapters, flags = [fixture], ["--no-html"]
    proc = _kdl_run(*map(str, chapters), "--backend", backend, "--build-dir", str(build), *flags)
    return {"proc": proc, "build": build, "backend": backend, "chapters": chapters}


def test_executed_notebooks_keep_every_source_cell(book_run):
    assert book_run["proc"].returncode == 1, book_run["proc"].stdout  # the fixture fails on purpose
    for source_path in book_run["chapters"]:
        source = nbformat.read(source_path, as_version=4)
        executed = nbformat.read(book_run["build"] / book_run["backend"] / source_path.name,
                                 as_version=4)
        assert len(executed.cells) == len(source.cells), source_path.name
        for index, (a, b) in enumerate(zip(source.cells, executed.cells)):
            where = f"{source_path.name} cell {index}"
            assert (b.cell_type, b.source) == (a.cell_type, a.source), where
        outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
        assert outputs, f"{source_path.name}: nothing was executed"


def test_no_library_log_lines_in_notebooks_or_console(book_run):
    proc = book_run["proc"]
    for path in (book_run["build"] / book_run["backend"]).glob("*.ipynb"):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                text = output.get("text", "") + "".join(output.get("traceback", []))
                assert not LOG_LINE.search(text), f"{path.name} cell {index}: {text[:300]}"
    # The console: one line per chapter, the failure's cell, a summary, no library logs anywhere
    # (the kernels' own output goes to a log file; `import kdl` must not import TensorFlow).
    assert not LOG_LINE.search(proc.stdout), proc.stdout
    assert not LOG_LINE.search(proc.stderr), f"library log lines on the console:\n{proc.stderr}"
    n = len(book_run["chapters"])
    # One job prints "[k/n] name on backend ... failed", several "[k/n] name on backend: failed in".
    assert re.search(rf"^\[\d+/{n}\] 99_fails on {book_run['backend']}(:| \.\.\.) failed",
                     proc.stdout, re.MULTILINE), proc.stdout
    assert "RuntimeError: broken on purpose" in proc.stdout
    assert f"{n - 1} of {n} chapters passed on {book_run['backend']}" in proc.stdout


if keras.backend.backend() == SITE_BACKEND:  # why one backend: the module docstring

    @pytest.fixture(scope="module")
    def site(book_run):
        proc = book_run["proc"]
        index = book_run["build"] / "html" / "index.html"
        assert f"book: {index}" in proc.stdout.splitlines()[-1], proc.stdout + proc.stderr
        return index.parent

    @pytest.fixture(scope="module")
    def browser_page():
        """A headless Chromium page that aborts, and records, every request not to `file:`."""
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            sync_playwright = None
        if chromium is None or sync_playwright is None:
            why = ("no `chromium` on PATH (install it: apt-get install -y chromium)"
                   if chromium is None
                   else "Playwright is not installed (pip install -c constraints.txt -e '.[test]')")
            message = f"THE BROWSER TEST OF THE BOOK DID NOT RUN: {why}"
            if os.environ.get("CI"):
                pytest.fail(message + "; .ci/run installs Chromium, so CI must have it")
            warnings.warn(message, stacklevel=1)
            pytest.skip(message)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.outside_requests = []

            def block(route):
                if route.request.url.startswith("file:"):
                    return route.continue_()
                page.outside_requests.append(route.request.url)
                return route.abort()

            page.route("**/*", block)
            yield page
            browser.close()

    def _open(page, path: Path) -> None:
        page.goto(path.as_uri())
        if page.locator("script[src*='mathjax']").count():
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("MathJax.startup.promise")

    def _chapter_titles(book_run) -> dict[str, str]:
        titles = {}
        for path in book_run["chapters"]:
            first = nbformat.read(path, as_version=4).cells[0].source
            titles[path.stem] = re.search(r"^# +(.+)$", first, re.MULTILINE).group(1).strip()
        return titles

    def test_index_links_every_chapter_with_its_run(site, browser_page, book_run):
        page = browser_page
        _open(page, site / "index.html")
        table = page.locator("table").first.inner_text()
        for stem, title in _chapter_titles(book_run).items():
            link = page.locator(f"article a[href='{stem}.html']")
            assert link.count() >= 1 and link.first.inner_text() == title, stem
        assert "failed" in table and "passed" in table and SITE_BACKEND in table
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "index.png"))
        assert page.outside_requests == []

    def test_chapter_page_title_math_solutions_and_no_log_text(site, browser_page, book_run):
        page = browser_page
        stem = REAL_CHAPTER.stem
        title = _chapter_titles(book_run)[stem]
        _open(page, site / f"{stem}.html")
        assert page.title().startswith(title) and page.locator("h1").first.inner_text() == title
        # Every formula the page holds is typeset, none failed, and no TeX source is left visible.
        formulas = page.locator("mjx-container").count()
        assert formulas >= 50 and formulas == page.locator(".math").count(), formulas
        assert page.locator("mjx-merror").count() == 0
        text = page.locator("article").inner_text()
        assert "$$" not in text and "\\(" not in text and "\\frac" not in text
        # The run banner: backend, device and seconds from the report, the notebook to download.
        banner = page.locator("p.kdl-run").inner_text()
        assert f"Executed on {SITE_BACKEND}" in banner and " s ·" in banner
        assert (site / page.locator("p.kdl-run a").get_attribute("href")).exists()
        # Solutions folded behind "Show solution", one per tagged cell, and they unfold on a click.
        nb = nbformat.read(REAL_CHAPTER, as_version=4)
        tagged = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
        folded = page.locator("details.hide")
        assert folded.count() == len(tagged) >= 3
        first_code = folded.first.locator(".cell_input")
        assert not first_code.is_visible()
        assert folded.first.locator("summary").inner_text().strip().startswith("Show solution")
        folded.first.locator("summary").click()
        assert first_code.is_visible()
        # Navigation: sidebar lists every chapter, previous/next links, in-page contents.
        assert page.locator("nav.bd-docs-nav a").count() >= len(book_run["chapters"]) + 1
        assert page.locator("a.right-next").count() == 1
        assert page.locator("a.left-prev").count() == 1
        assert page.locator("#pst-page-toc-nav a[href='#glossary']").is_visible()
        assert not page.locator(".output.stderr").count() and not LOG_LINE.search(text)
        # Screenshots for the README: a stretch of derivation, and the folded exercise solutions.
        folded.first.locator("summary").click()
        for name, anchor in (("chapter", "div.math"), ("solutions", "#exercises")):
            page.locator(anchor).first.evaluate("e => { e.scrollIntoView(); scrollBy(0, -150); }")
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        assert page.outside_requests == []

    def test_failing_chapter_page_shows_where_it_failed(site, browser_page, book_run):
        page = browser_page
        executed = nbformat.read(book_run["build"] / SITE_BACKEND / "99_fails.ipynb", as_version=4)
        stderr = [o["text"] for o in executed.cells[2].outputs if o.get("name") == "stderr"]
        assert WARNING_TEXT in "".join(stderr)  # the notebook keeps the warning; the page must not
        _open(page, site / "99_fails.html")
        assert page.locator("h1").first.inner_text() == "99 · A chapter that fails"
        assert page.locator("mjx-container").count() == 2
        alert = page.locator("div.kdl-failed").inner_text()
        assert "failed at cell 5" in alert and "RuntimeError: broken on purpose" in alert
        failed = page.locator("#failed-cell")
        assert "raise RuntimeError" in failed.inner_text()  # the cell's source and its traceback
        assert "broken on purpose" in failed.inner_text()
        text = page.locator("article").inner_text()
        assert "after the warning" in text and WARNING_TEXT not in text  # stdout kept, stderr gone
        assert "never reached" in text  # the source of the cells after it is still shown
        assert page.locator("details.hide summary").inner_text().strip().startswith("Show solution")
        assert page.outside_requests == []

    def test_glossary_page_merges_chapters_with_links_back(site, browser_page, book_run):
        page = browser_page
        _open(page, site / "glossary.html")
        rows = page.locator("article table tbody tr")
        chapter_rows = sum(len(_glossary(path)) for path in book_run["chapters"])
        assert rows.count() == chapter_rows > 10
        fixture_row = page.locator("article tr", has_text="测试夹具")
        target = fixture_row.locator("a").get_attribute("href")
        assert target == "99_fails.html#glossary"
        fixture_row.locator("a").click()
        page.wait_for_url("**/99_fails.html#glossary")
        page.wait_for_load_state()
        assert page.locator("#glossary h2").inner_text().startswith("Glossary")
        assert page.locator("#glossary h2").is_visible()
        assert page.outside_requests == []

    def _glossary(path: Path) -> list[str]:
        nb = json.loads(path.read_text(encoding="utf-8"))
        from kdl.book import glossary_rows

        return glossary_rows(nb)

    def test_search_finds_a_chapter_from_file_url(site, browser_page):
        page = browser_page
        page.goto((site / "search.html").as_uri() + "?q=softmax")
        page.wait_for_selector("#search-results li", timeout=20_000)
        assert page.locator(f"#search-results a[href*='{REAL_CHAPTER.stem}']").count() >= 1
        assert page.outside_requests == []
