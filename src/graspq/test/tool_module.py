"""Load a script of tools/ as a module, so tests can call its functions (the tools are scripts,
not part of the graspq package)."""

import importlib.util
from pathlib import Path
from types import ModuleType


def load_tool(path: Path) -> ModuleType:
    """A fresh module from the tool script at ``path``, named after its file."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
