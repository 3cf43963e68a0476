"""One model a side (issue 11): the ESP side's model imports nothing of the platform side.

Its `__all__` is checked with the other packages' in tests/simulator/test_public_api.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import simulator.protocol


def test_the_esp_side_model_imports_nothing_of_the_platform_side() -> None:
    """The model judges the reference receiver, so it never borrows the receiver's rules."""
    folder = Path(simulator.protocol.__file__).parent
    for source in sorted(folder.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        imported = [
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        ] + [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        ]
        assert imported, source.name
        assert not [name for name in imported if name.startswith("reference_impl")], source.name
