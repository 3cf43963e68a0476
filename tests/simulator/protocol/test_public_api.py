"""simulator.protocol's public API (issue 11): the curated `__all__`, and one model a side."""

from __future__ import annotations

import ast
from pathlib import Path

import simulator.protocol

PUBLIC = [
    "BuiltBatch",
    "Difference",
    "Expected",
    "ExpectedFailure",
    "batch_reply",
    "build_batch",
    "check_response",
    "difference",
    "expected_for",
    "expected_response",
    "failing",
]


def test_the_public_names_are_the_curated_list() -> None:
    assert list(simulator.protocol.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(simulator.protocol, name) is not None


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
