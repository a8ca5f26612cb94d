"""The documentation stays true: porting table, API coverage, notebooks stored with outputs."""

from __future__ import annotations

import functools
import importlib.util
import json
import pathlib
import sys
import types

import pytest

import functional_dl as fdl

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str) -> types.ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


api_pages = _load("api_pages")
porting_table = _load("porting_table")

# Modules whose every function and layer has a row in the porting table, or is named in
# NO_TORCH_EQUIVALENT. State containers (``...State``, ``...Config``) are not listed.
PORTED_MODULES = (
    "activations",
    "losses",
    "nn",
    "nn.functional",
    "nn.init",
    "optim",
    "schedules",
    "augment",
)


def _resolve(dotted: str):
    assert dotted.startswith("fdl."), dotted
    obj = fdl
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


@functools.cache
def _listed() -> set[str]:
    return {ours for area in porting_table.AREAS for _, ours, _ in area.rows}


def test_every_porting_row_names_a_public_object():
    missing = []
    for dotted in sorted(_listed() | set(porting_table.NO_TORCH_EQUIVALENT)):
        try:
            _resolve(dotted)
        except AttributeError:
            missing.append(dotted)
    assert not missing, f"the porting table names objects that do not exist: {missing}"


def test_every_public_function_and_layer_is_in_the_porting_table():
    unlisted = []
    known = _listed() | set(porting_table.NO_TORCH_EQUIVALENT)
    for module_name in PORTED_MODULES:
        module = _resolve(f"fdl.{module_name}")
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType) or name.endswith(("State", "Config")):
                continue
            if not callable(obj):
                continue
            if f"fdl.{module_name}.{name}" not in known:
                unlisted.append(f"fdl.{module_name}.{name}")
    assert not unlisted, (
        "add these to docs/porting_table.py (a row, or NO_TORCH_EQUIVALENT): " + ", ".join(unlisted)
    )


def test_porting_rows_are_unique_and_described():
    rows = [row for area in porting_table.AREAS for row in area.rows]
    torch_names = [r[0] for r in rows]
    assert len(torch_names) == len(set(torch_names))
    assert all(area.common.strip() for area in porting_table.AREAS)


def test_every_public_name_has_a_documented_entry():
    assert api_pages.undocumented() == []


def test_api_pages_cover_every_public_module():
    documented = {module.__name__ for _, module, _ in api_pages.public_modules()}
    for name in fdl.__all__:
        module = getattr(fdl, name)
        if isinstance(module, types.ModuleType):
            assert module.__name__ in documented, f"{module.__name__} has no API page"
    page = api_pages.api_page(fdl.losses, "Loss functions")
    assert "::: functional_dl.losses.cross_entropy" in page


def test_the_porting_page_lists_every_row():
    page = api_pages.porting_page()
    for area in porting_table.AREAS:
        for torch_name, ours, _ in area.rows:
            assert f"| `{torch_name}` | `{ours}` |" in page


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_PLOTS = ("plt.subplots(", "plt.figure(", "plt.show(", "plot_history(")  # cells that draw a figure


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_with_its_outputs(path):
    """``make notebooks`` stores every notebook executed; plotting cells hold an image."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, f"{path.name}: code cells {unexecuted} not executed; run make notebooks"
    for i, cell in enumerate(code):
        source = "".join(cell["source"])
        if any(p in source for p in _PLOTS):
            images = [o for o in cell["outputs"] if "image/png" in o.get("data", {})]
            assert images, f"{path.name}: plotting code cell {i} has no stored image"
