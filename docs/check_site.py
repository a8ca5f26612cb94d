"""Browser check of the built site (``make docs-check``).

Serves ``site/`` on localhost and loads the home page, an API page with math, a notebook
page and the search page in headless Chromium (Debian's ``chromium`` package, driven
through Playwright's protocol client; no browser is downloaded). Fails on console errors,
failed requests, math left unrendered, images that did not load, or a search that finds
nothing. Screenshots go to ``--screenshots`` (default ``build/docs-check``, not tracked).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import pathlib
import shutil
import sys
import threading

ROOT = pathlib.Path(__file__).resolve().parents[1]

PAGES = (
    ("home", "index.html", {"math": False, "images": False}),
    ("api with math", "api/optim.html", {"math": True, "images": False}),
    ("notebook", "notebooks/01_activations.html", {"math": False, "images": True}),
    ("search", "index.html?q=cross_entropy", {"math": False, "images": False, "search": True}),
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("docs-check: Chromium not found; install Debian's package: apt-get install chromium")


def _serve(site: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the output to the check's own lines
        pass


def check(site: pathlib.Path, shots: pathlib.Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    server, port = _serve(site)
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            for label, url, want in PAGES:
                page = browser.new_page()
                errors: list[str] = []
                page.on("console", lambda m, e=errors: m.type == "error" and e.append(m.text))
                page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
                page.on("requestfailed", lambda r, e=errors: e.append(f"failed request {r.url}"))
                page.on(
                    "response",
                    lambda r, e=errors: r.status >= 400 and e.append(f"HTTP {r.status} {r.url}"),
                )
                page.goto(f"http://127.0.0.1:{port}/{url}", wait_until="networkidle")
                if want["math"]:
                    page.wait_for_function(
                        "() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
                        " && document.querySelectorAll('.MathJax').length > 0",
                        timeout=20000,
                    )
                    raw = page.evaluate(
                        "() => [...document.querySelectorAll('.arithmatex')]"
                        ".filter(e => !e.querySelector('.MathJax')).length"
                    )
                    if raw:
                        problems.append(f"{label}: {raw} formulas left unrendered")
                if want["images"]:
                    n, broken = page.evaluate(
                        "() => { const im = [...document.images]; return [im.length,"
                        " im.filter(i => !(i.complete && i.naturalWidth > 0)).length]; }"
                    )
                    if n == 0 or broken:
                        problems.append(f"{label}: {n} images, {broken} did not load")
                if want.get("search"):
                    page.wait_for_selector(".md-search-result__item", timeout=20000)
                    hits = page.locator(".md-search-result__item").count()
                    if hits == 0:
                        problems.append(f"{label}: the search found nothing")
                page.screenshot(path=str(shots / f"{label.replace(' ', '_')}.png"), full_page=False)
                # MathJax 2 probes font loading with an ``about:blank`` font: not a fault.
                errors = [e for e in errors if "about:blank" not in e and "ERR_FAILED" not in e]
                problems += [f"{label}: {e}" for e in errors]
                print(f"docs-check: {label:14s} {url:34s} {'ok' if not errors else 'ERRORS'}")
                page.close()
            browser.close()
    finally:
        server.shutdown()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default=str(ROOT / "site"))
    parser.add_argument("--screenshots", default=str(ROOT / "build" / "docs-check"))
    args = parser.parse_args()
    site = pathlib.Path(args.site)
    if not (site / "index.html").exists():
        sys.exit(f"docs-check: no built site in {site}; run `make docs` first")
    problems = check(site, pathlib.Path(args.screenshots))
    for p in problems:
        print("docs-check: FAIL", p)
    if problems:
        sys.exit(1)
    print(f"docs-check: passed; screenshots in {args.screenshots}")


if __name__ == "__main__":
    main()
