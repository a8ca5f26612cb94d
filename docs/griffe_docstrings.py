"""Griffe extension: read our docstrings the way they are written.

* ``Example:`` (singular) opens the examples section, whose ``>>>`` lines are code;
* a reStructuredText ``.. math::`` block becomes a displayed formula (``$$ … $$``,
  rendered by MathJax through ``pymdownx.arithmatex``).
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

from griffe import Extension

_MATH = re.compile(
    r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n\n?(?P<body>(?:(?P=indent)[ \t]+.*\n|[ \t]*\n)+)", re.M
)


def _math(match: re.Match) -> str:
    indent = match.group("indent")
    body = textwrap.dedent(match.group("body")).strip("\n")
    return f"{indent}$$\n" + textwrap.indent(body, indent) + f"\n{indent}$$\n\n"


def rewrite(text: str) -> str:
    text = re.sub(r"^(\s*)Example:\s*$", r"\1Examples:", text, flags=re.M)
    return _MATH.sub(_math, text + "\n").rstrip("\n")


class OurDocstrings(Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if getattr(obj, "docstring", None) is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
