"""Data sets that ship with installed packages, splits and key-driven batch iterators."""

__all__: list[str] = []
