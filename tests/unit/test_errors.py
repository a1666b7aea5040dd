"""Unit tests for lamina.errors: every exception lamina defines lives under the one root."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType

import lamina
from lamina.errors import LaminaError

# Exceptions that must NOT be caught by ``except Exception`` on their way out: they derive from
# BaseException on purpose (like KeyboardInterrupt), so they cannot sit under LaminaError.
_BASE_EXCEPTION_SIGNALS = {"lamina.cli.vpc._Interrupted"}


def _lamina_modules() -> list[ModuleType]:
    """Import every module of the lamina package.

    Walks the source tree rather than ``pkgutil.walk_packages``: ``lamina.api`` and
    ``lamina.domain`` are namespace packages, which ``walk_packages`` does not descend into.
    """
    root = Path(lamina.__file__).parent
    modules = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if "static" in parts or rel.name == "__main__":
            continue
        modules.append(importlib.import_module(".".join(parts)))
    return modules


def _defined_exceptions() -> list[tuple[str, type[BaseException]]]:
    found = []
    for module in _lamina_modules():
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append((f"{module.__name__}.{obj.__qualname__}", obj))
    return found


def test_walk_finds_the_known_exceptions() -> None:
    # Guards the walk itself: if it silently stopped descending, the next test would pass vacuously.
    names = {name for name, _ in _defined_exceptions()}
    assert {
        "lamina.errors.AwsError",
        "lamina.domain.policy._Syntax",
        "lamina.builder.build.BuildError",
        "lamina.runtime.pool.PoolFull",
    } <= names


def test_every_exception_is_a_lamina_error() -> None:
    outside = [
        name
        for name, cls in _defined_exceptions()
        if not issubclass(cls, LaminaError) and name not in _BASE_EXCEPTION_SIGNALS
    ]
    assert outside == []


def test_base_exception_signals_are_not_exceptions() -> None:
    # The exemption above is only for BaseException signals; an Exception subclass may not use it.
    for name, cls in _defined_exceptions():
        if name in _BASE_EXCEPTION_SIGNALS:
            assert not issubclass(cls, Exception), name


def test_value_errors_stay_value_errors() -> None:
    # Callers (argparse type functions, the CLI) catch these as ValueError.
    from lamina.builder.inputs import InputError
    from lamina.builder.targets import TargetError
    from lamina.domain.accounts import AccountsError

    for cls in (InputError, TargetError, AccountsError):
        assert issubclass(cls, LaminaError)
        assert issubclass(cls, ValueError)
