"""The surface a newcomer meets: README code runs verbatim, ``dir()`` shows only the API."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

import functional_dl as fdl

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.S | re.M)


@pytest.mark.parametrize(
    "page,minimum", [("README.md", 4), ("docs/index.md", 1), ("docs/cookbook.md", 7)]
)
def test_every_python_block_of_a_page_runs_verbatim(page, minimum):
    """The blocks run in order in one namespace, as a reader pastes them into a session."""
    blocks = _python_blocks(ROOT / page)
    assert len(blocks) >= minimum
    namespace: dict = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page} block {i + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the failure message
            pytest.fail(f"{page} python block {i + 1} fails: {exc!r}\n{block}")


def _public_modules() -> dict[str, types.ModuleType]:
    out: dict[str, types.ModuleType] = {"functional_dl": fdl}
    todo = [("functional_dl", fdl)]
    while todo:
        path, mod = todo.pop()
        for name in getattr(mod, "__all__", []):
            child = getattr(mod, name)
            if isinstance(child, types.ModuleType) and f"{path}.{name}" not in out:
                out[f"{path}.{name}"] = child
                todo.append((f"{path}.{name}", child))
    return out


MODULES = _public_modules()


def test_the_walk_reaches_the_nested_modules():
    assert {"functional_dl.nn.init", "functional_dl.data", "functional_dl.train"} <= set(MODULES)


@pytest.mark.parametrize("path", sorted(MODULES))
def test_dir_of_a_public_module_shows_only_its_api(path):
    mod = MODULES[path]
    public = {n for n in dir(mod) if not n.startswith("_")}
    assert public == set(mod.__all__), f"{path}: not API {sorted(public - set(mod.__all__))}"


def test_imported_helpers_are_hidden_but_still_reachable():
    for leaked in ("jax", "jnp", "math", "Any", "check_choice"):
        assert leaked not in dir(fdl.nn.init)
    for leaked in ("np", "functools", "check_int"):
        assert leaked not in dir(fdl.data)
    assert fdl.data.np is not None  # dir() only: attribute access is unchanged
    assert "xavier_uniform" in dir(fdl.nn.init) and "__doc__" in dir(fdl.data)
