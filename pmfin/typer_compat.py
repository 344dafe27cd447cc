"""Two corrections to typer 0.29, in one place (``pmfin.cli`` applies them once, at import).

- **No pydantic where there is nothing to coerce.** typer builds a pydantic ``TypeAdapter`` for
  an option the moment the option is processed, even when its value is None (an option not
  given, which typer returns unchanged) or already of the option's type (a default such as
  ``Format.table``, a text option given as text). Importing pydantic costs 60–80 ms, which
  ``pmfin report --help``, shell completion and every report paid for. Here an option's adapter
  is built the first time a value needs converting or checking (``--window 12``: text to a
  number; a number with bounds; a path).
- **Flags show no value in help.** typer's rich help prints ``<bool>`` after an option that
  takes no value (``--live``, ``--verbose``, ``--help``); a flag now shows none.

Both patch typer's own classes (``typer.core``), since neither can be configured; each checks
that what it replaces is there and otherwise leaves typer as it is (``tests/test_startup.py``
fails then: help would load pydantic, or show ``<bool>``).
"""

from __future__ import annotations

from typing import Any


class _Unbuilt:
    """Stands in for typer's runtime parameter until a value needs coercing."""

    def __init__(self, build):
        self._build = build

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # what typer's RuntimeParam.coerce returns, without building an adapter
            return () if param.multiple or param.nargs == -1 else None
        desc = param.type_descriptor
        if type(value) is desc.annotation and not (desc.is_ranged or desc.is_path or desc.is_file):
            return value  # already what the adapter would return
        return self._build(param).coerce(value, param=param, ctx=ctx)


def apply() -> None:
    from typer import core

    parameter = getattr(core, "_TyperParameter", None)
    build = getattr(parameter, "get_runtime_param", None)
    if build is not None and not getattr(build, "pmfin", False):
        unbuilt = _Unbuilt(build)

        def get_runtime_param(self):
            if getattr(self, "_runtime_param", None) is None:
                return unbuilt
            return build(self)

        get_runtime_param.pmfin = True  # type: ignore[attr-defined]
        parameter.get_runtime_param = get_runtime_param

    option = getattr(core, "TyperOption", None)
    display = getattr(option, "display_type_rich", None)
    if display is not None and not getattr(display, "pmfin", False):

        def display_type_rich(self, ctx):
            if getattr(self, "is_flag", False) and self.metavar is None:
                return None  # a flag takes no value
            return display(self, ctx)

        display_type_rich.pmfin = True  # type: ignore[attr-defined]
        option.display_type_rich = display_type_rich
