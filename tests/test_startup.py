"""Start-up: the CLI imports only what a command uses (issue 11). Not timed: what is imported.

Each check runs in a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("stripe", "sqlalchemy", "alembic", "pandas", "numpy", "matplotlib", "pgserver", "psycopg", "requests")
# Not heavy for a command that needs it, but help and completion must not pay for it (typer 0.29
# imports it to coerce option values: pmfin.typer_compat)
HELP_ONLY = ("pydantic",)


def loaded_after(code: str, packages: tuple[str, ...] = HEAVY) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    modules = set(json.loads(out.strip().splitlines()[-1]))
    return {name for name in packages if name in modules}


def test_importing_the_cli_loads_no_heavy_package():
    assert loaded_after("import pmfin.cli") == set()


@pytest.mark.parametrize(
    "args", [["--help"], ["report", "--help"], ["report", "mrr", "--help"], ["connect", "--help"], ["db", "--help"]]
)
def test_help_loads_no_heavy_package(args):
    code = (
        "import sys\nfrom pmfin.cli import app\n"
        f"try:\n    app({args!r}, prog_name='pmfin')\nexcept SystemExit:\n    pass\n"
    )
    assert loaded_after(code, HEAVY + HELP_ONLY) == set()


def test_shell_completion_loads_no_heavy_package():
    code = (
        "import os\nos.environ.update(_PMFIN_COMPLETE='complete_bash', COMP_WORDS='pmfin report m', COMP_CWORD='2')\n"
        "from pmfin.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    assert loaded_after(code, HEAVY + HELP_ONLY) == set()


def test_shell_completion_through_the_real_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMFIN_", "_PMFIN"))}
    env.update(_PMFIN_COMPLETE="complete_bash", COMP_WORDS="pmfin report m", COMP_CWORD="2")
    done = subprocess.run([sys.executable, "-m", "pmfin"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["mrr", "movements"]


def test_flags_show_no_value_type_in_help(cli):
    """typer 0.29 prints '<bool>' after options that take no value (pmfin.typer_compat); every
    command's help is checked in tests/test_readme.py, the groups' here."""
    for args in ([], ["report"], ["connect"], ["costs"], ["fx"], ["db"]):
        result = cli(*args, "--help", env={"COLUMNS": "200"})
        assert result.exit_code == 0, args
        assert "<bool>" not in result.stdout, args
    root = cli("--help", env={"COLUMNS": "200"}).stdout
    assert "--live " in root and "<path>" in root  # options that take a value still say what
