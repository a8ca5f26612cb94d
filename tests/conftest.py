"""Test configuration shared by every test module (tolerances live in tests/helpers.py)."""
