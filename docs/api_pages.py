"""The generated pages of the site and the coverage check, without mkdocs.

Used by ``docs/hooks.py`` at build time and by ``tests/test_docs.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (page name, module, one-line description) in the order of the navigation.
MODULES = (
    ("activations", "functional_dl.activations", "Activation functions"),
    ("losses", "functional_dl.losses", "Loss functions"),
    ("nn", "functional_dl.nn", "Layers"),
    ("nn.functional", "functional_dl.nn.functional", "Functional ops"),
    ("nn.init", "functional_dl.nn.init", "Initializers"),
    ("nn.backprop", "functional_dl.nn.backprop", "Backpropagation by hand"),
    ("optim", "functional_dl.optim", "Optimizers"),
    ("schedules", "functional_dl.schedules", "Learning-rate schedules"),
    ("augment", "functional_dl.augment", "Image augmentations"),
    ("data", "functional_dl.data", "Data sets and batches"),
    ("metrics", "functional_dl.metrics", "Metrics"),
    ("train", "functional_dl.train", "Training, checkpoints, devices"),
    ("models", "functional_dl.models", "Ready-made models"),
    ("interop", "functional_dl.interop", "PyTorch weights"),
    ("grads", "functional_dl.grads", "Gradient registry and checker"),
)


def public_modules() -> list[tuple[str, types.ModuleType, str]]:
    """The documented modules that exist in this version of the package."""
    out = []
    for page, name, title in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        out.append((page, module, title))
    return out


def public_names(module: types.ModuleType) -> list[str]:
    """The names of ``module.__all__`` that are not themselves modules."""
    names = getattr(module, "__all__", None)
    if names is None:
        raise ValueError(f"{module.__name__} has no __all__")
    return [n for n in names if not isinstance(getattr(module, n), types.ModuleType)]


def undocumented() -> list[str]:
    """Public names without a docstring of their own (the coverage check)."""
    missing = []
    for _, module, _ in public_modules():
        for name in public_names(module):
            obj = getattr(module, name)
            doc = getattr(obj, "__doc__", None)
            if isinstance(obj, (int, float, str, tuple, dict, frozenset)):
                continue  # constants are documented in the module docstring
            if not doc or not doc.strip():
                missing.append(f"{module.__name__}.{name}")
    return missing


def api_page(module: types.ModuleType, title: str) -> str:
    lines = [f"# `{module.__name__.replace('functional_dl', 'fdl')}`: {title}", ""]
    lines += [f"::: {module.__name__}", "    options:", "      members: false", ""]
    for name in public_names(module):
        obj = getattr(module, name)
        if isinstance(obj, (int, float, str, tuple, dict, frozenset)):
            lines += [f"## `{name}`", "", f"Constant: `{name} = {obj!r}`.", ""]
            continue
        lines += [f"::: {module.__name__}.{name}", ""]
    return "\n".join(lines)


def load_porting_table() -> types.ModuleType:
    """``docs/porting_table.py`` as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location(
        "porting_table", ROOT / "docs" / "porting_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple needs the module registered
    spec.loader.exec_module(module)
    return module


def porting_page() -> str:
    porting_table = load_porting_table()

    lines = [
        "# Coming from PyTorch",
        "",
        "Every PyTorch name functional_dl implements, with our name and every documented "
        "difference. The page is generated from `docs/porting_table.py`; a test checks "
        "that every name on it exists and that every public function and layer is listed.",
        "",
        "Conventions that hold everywhere: arrays are channels last; randomness takes an "
        "explicit `jax.random` key as the first argument; layers are `init`/`apply` pairs "
        "with explicit parameters and state; nothing is modified in place.",
        "",
    ]
    for area in porting_table.AREAS:
        lines += [f"## {area.title}", "", f"In this whole section: {area.common}", ""]
        lines += ["| PyTorch | functional_dl | differences |", "|---|---|---|"]
        for torch_name, ours, diff in area.rows:
            lines.append(f"| `{torch_name}` | `{ours}` | {diff or 'none beyond the above'} |")
        lines.append("")
    return "\n".join(lines)
