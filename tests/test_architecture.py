"""The package's import graph only points down, to public names.

Layers, bottom to top (a module may import its own area and any lower layer)::

    0  _checks, _dtypes, grads         validation, the dtype policy, the gradient registry
    1  activations, losses, optim,     the stateless building blocks
       schedules, augment, data, metrics
    2  nn                              layers (and nn.functional ops) built on layer 1
    2.5 interop                        PyTorch state dicts <-> nn parameters
    3  train                           training state, step, loop, checkpoints
    4  models, _bench                  ready-made networks; the benchmark runner
    5  cli                             the command line
    6  functional_dl, __main__         the package root re-exports everything

Inside the package, another area's private module (``functional_dl.nn._core``) is never
imported, nor a private name (``from ..data import _host_rng``): areas talk through
their public names. The root's private helper modules
(``_checks``, ``_dtypes``) are the shared bottom layer and may be imported anywhere.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "functional_dl"
LAYER = {
    "_checks": 0,
    "_dtypes": 0,
    "grads": 0,
    "activations": 1,
    "losses": 1,
    "optim": 1,
    "schedules": 1,
    "augment": 1,
    "data": 1,
    "metrics": 1,
    "nn": 2,
    "interop": 2.5,
    "train": 3,
    "models": 4,
    "_bench": 4,
    "cli": 5,
    "__main__": 6,
    "": 6,  # the package root, functional_dl/__init__.py
}
# Same-layer edges that are part of the design (the lower side is the building block).
ALLOWED_SIDEWAYS = {("losses", "activations"), ("optim", "schedules")}


def _module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: pathlib.Path, root: pathlib.Path) -> list[tuple[int, str, str | None]]:
    """``(line, absolute module, imported name or None)`` for every functional_dl import."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "functional_dl" or target.startswith("functional_dl."):
                # ``from .. import nn`` imports the module functional_dl.nn
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    is_module = (root.parent / sub.replace(".", "/")).is_dir() or (
                        root.parent / (sub.replace(".", "/") + ".py")
                    ).exists()
                    if is_module:
                        found.append((node.lineno, sub, None))
                    else:
                        found.append((node.lineno, target, alias.name))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "functional_dl" or a.name.startswith("functional_dl."):
                    found.append((node.lineno, a.name, None))
    return found


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


FILES = sorted(ROOT.rglob("*.py"))


def _violations(path: pathlib.Path, root: pathlib.Path = ROOT) -> list[str]:
    src_area = _area(_module_name(path, root))
    bad = []
    for line, target, name in _imports(path, root):
        dst_area = _area(target)
        where = f"{path.relative_to(root.parent)}:{line} imports {target}"
        where += f".{name}" if name else ""
        if dst_area == src_area:
            continue
        if dst_area not in LAYER:
            bad.append(f"{where}: area {dst_area!r} has no layer in this test")
            continue
        up = LAYER[dst_area] > LAYER[src_area]
        sideways = LAYER[dst_area] == LAYER[src_area] and (src_area, dst_area) not in (
            ALLOWED_SIDEWAYS
        )
        if up or sideways:
            bad.append(f"{where}: layer {LAYER[src_area]} -> {LAYER[dst_area]}")
        if any(p.startswith("_") for p in target.split(".")[2:]):
            bad.append(f"{where}: a private module of another area")
        elif name and name.startswith("_"):
            bad.append(f"{where}: a private name of another area")
    return sorted(set(bad))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_to_public_names(path):
    assert not _violations(path), "\n".join(_violations(path))


def test_every_area_has_a_layer():
    areas = {_area(_module_name(p)) for p in FILES}
    assert areas <= set(LAYER), sorted(areas - set(LAYER))


def test_the_checker_fails_on_upward_and_private_imports(tmp_path):
    root = tmp_path / "functional_dl"
    for area in ("losses", "nn"):
        (root / area).mkdir(parents=True)
        (root / area / "__init__.py").write_text("")
    (root / "nn" / "_core.py").write_text("")
    (root / "data.py").write_text("")
    bad = root / "losses" / "_x.py"
    bad.write_text("from ..nn._core import Layer\nfrom ..nn import init\nfrom ..data import _rng\n")
    found = "\n".join(_violations(bad, root))
    assert "imports functional_dl.nn._core.Layer: layer 1 -> 2" in found, found
    assert "imports functional_dl.nn._core.Layer: a private module" in found, found
    assert "imports functional_dl.nn.init: layer 1 -> 2" in found, found
    assert "imports functional_dl.data._rng: a private name" in found, found
    good = root / "losses" / "_y.py"
    good.write_text("from .._checks import check_int\nfrom . import _x\n")
    assert _violations(good, root) == []
