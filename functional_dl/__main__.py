"""``python -m functional_dl``: see :mod:`functional_dl.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
