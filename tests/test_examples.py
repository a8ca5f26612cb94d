"""Every script of ``examples/`` runs at small settings and prints its result."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = [
    p
    for p in sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    if p.stem != "char_gpt"
]  # char_gpt: tests/test_gpt_preset.py


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_examples_are_there():
    names = {p.stem for p in SCRIPTS}
    assert {"cifar_style_cnn", "augment_pipeline", "optax_mlp"} <= names


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_runs_small_and_prints_its_result(path, capsys):
    module = _load(path)
    assert module.__doc__ and "--small" in module.__doc__, "document the --small run"
    result = module.main(["--small"])
    out = capsys.readouterr().out
    assert "accuracy" in out, out
    assert result is not None
    if path.stem == "optax_mlp":
        assert result > 0.9  # the moons are learnt
