"""mkdocs hooks: add the generated pages and serve MathJax locally.

Pages generated at build time (nothing generated is committed), see ``api_pages.py``:

* ``api/<module>.md`` — one page per public module, one entry per name of its ``__all__``
  (rendered from the docstrings by mkdocstrings);
* ``porting.md`` — the "Coming from PyTorch" table, from ``docs/porting_table.py``;
* ``gradients.md`` — the gradient table, from ``GRADIENTS.md`` when present, else from
  ``functional_dl.grads.check_all``;
* ``changelog.md`` / ``performance.md`` — ``CHANGELOG.md`` and ``bench/RESULTS.md``.

The build fails (``PluginError``) when a public name has no docstring, so every public
symbol has a documented entry.
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import sys

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str):
    """A module of ``docs/`` by file (the folder is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # NamedTuple needs the module registered
    spec.loader.exec_module(module)
    return module


api_pages = _load("api_pages")


def gradients_page() -> str:
    stored = ROOT / "GRADIENTS.md"
    if stored.exists():
        return stored.read_text()
    import functional_dl  # noqa: F401  (registers every entry)
    from functional_dl import grads

    lines = [
        "# Hand-derived gradients",
        "",
        "Every registered entry checked by `fdl.grads.check` (float64).",
        "",
        "| name | max rel. error vs autodiff | max rel. error vs finite differences | passed |",
        "|---|---:|---:|---|",
    ]
    for r in grads.check_all():
        lines.append(f"| `{r.name}` | {r.max_rel_autodiff:.2e} | {r.max_rel_fd:.2e} | {r.passed} |")
    return "\n".join(lines) + "\n"


def performance_page() -> str:
    text = (ROOT / "bench" / "RESULTS.md").read_text()
    return (
        text + "\n\n## Reproduce\n\n`make bench` runs every script in `bench/` and rewrites "
        "`bench/RESULTS.md` and its plot; each row is a ratio against the reference measured "
        "in the same run on the same machine.\n"
    )


def on_config(config):
    missing = api_pages.undocumented()
    if missing:
        raise PluginError("public names without a documented entry: " + ", ".join(missing))
    return config


def on_files(files: Files, config) -> Files:
    pages = {
        f"api/{page}.md": api_pages.api_page(module, title)
        for page, module, title in api_pages.public_modules()
    }
    pages["porting.md"] = api_pages.porting_page()
    pages["gradients.md"] = gradients_page()
    pages["changelog.md"] = (ROOT / "CHANGELOG.md").read_text()
    pages["performance.md"] = performance_page()
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    png = ROOT / "bench" / "RESULTS.png"
    if png.exists():
        files.append(File.generated(config, "RESULTS.png", abs_src_path=str(png)))
    return files


def on_post_build(config) -> None:
    """Serve MathJax from the installed ``jupyter_server_mathjax`` package (no CDN)."""
    import jupyter_server_mathjax

    src = pathlib.Path(jupyter_server_mathjax.__file__).parent / "static"
    dst = pathlib.Path(config["site_dir"]) / "assets" / "mathjax"
    if not dst.exists():
        shutil.copytree(src, dst)
