"""Execute notebooks in place so that the stored copies show their outputs (``make notebooks``).

Each notebook runs top to bottom in a fresh kernel from the repository root's
``notebooks/`` folder; the notebooks fix their own random keys, so a re-run changes only
what the code changed. Execution counts are kept, run-time metadata is dropped.
"""

from __future__ import annotations

import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient


def run(path: pathlib.Path) -> None:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"{path}: executed in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        run(pathlib.Path(arg))
