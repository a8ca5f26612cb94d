"""Every docstring example of the package runs and prints what it says.

Each module of ``functional_dl`` (private ones included: that is where the public
functions are defined) is searched with :mod:`doctest`; examples see the module's own
globals plus ``jax``, ``jnp``, ``np`` and ``fdl``. Every public area must hold at least
one example.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import functional_dl as fdl

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(fdl.__path__, "functional_dl.")
    if not info.name.endswith("__main__")
)
PUBLIC_AREAS = (
    "activations",
    "losses",
    "optim",
    "schedules",
    "nn",
    "augment",
    "grads",
    "data",
    "metrics",
    "train",
    "models",
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _tests(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    globs = {**vars(module), "jax": jax, "jnp": jnp, "np": np, "fdl": fdl}
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, name, globs=globs) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in _tests(name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


@pytest.mark.parametrize("area", PUBLIC_AREAS)
def test_every_public_area_has_examples(area):
    names = [
        m for m in MODULES if m == f"functional_dl.{area}" or m.startswith(f"functional_dl.{area}.")
    ]
    count = sum(len(t.examples) for m in names for t in _tests(m))
    assert count > 0, f"functional_dl.{area} has no docstring example"
