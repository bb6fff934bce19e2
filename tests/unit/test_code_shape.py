"""What issue 21 asked of the code's shape, kept true: no function over 60 lines in the connector's own
packages, and no private name of dlt imported (a dlt upgrade may change those without notice)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("posthog_source", "pipelines", "reports")
FILES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_over_60_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and (node.end_lineno or node.lineno) - node.lineno + 1 > 60]
    assert not long, long


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_dlt_import(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dlt":
            parts = (node.module or "").split(".") + [alias.name for alias in node.names]
            private += [node.module or "" for part in parts if part.startswith("_") and part != "__future__"]
        elif isinstance(node, ast.Import):
            private += [a.name for a in node.names if a.name.split(".")[0] == "dlt"
                        and any(p.startswith("_") for p in a.name.split("."))]
    assert not private, private
