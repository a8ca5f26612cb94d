"""Test configuration shared by every test module (tolerances live in tests/helpers.py).

Rank promotion raises, as in equinox's tests: an implicit broadcast of a ``[n]`` array
against ``[m, n]`` is a bug in a library function until proven otherwise.
"""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
