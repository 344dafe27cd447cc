"""Modules imported on first use, so that ``pmfin --help`` never pays for what a command needs.

A command module names its service at the top as usual, but lazily::

    service = lazy_module("pmfin.stripe_ops.dunning")

and ``service.run(...)`` imports ``pmfin.stripe_ops.dunning`` (and with it stripe, sqlalchemy,
…) the first time an attribute is read. This is the standard library's
``importlib.util.LazyLoader``: the module is a real module in ``sys.modules`` from the start, so
a later ``import`` anywhere gets the same object. ``tests/test_startup.py`` checks that importing
the CLI loads none of the heavy packages.

Threads: the first attribute access executes the module, and in Python 3.11 ``LazyLoader`` does
not guard that against a second thread doing the same at once (a half-initialised module, an
ImportError). A command that starts threads touches its service first, in its own thread.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name`` as a module object that executes on first attribute access."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:  # pragma: no cover - a typo in pmfin itself
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
