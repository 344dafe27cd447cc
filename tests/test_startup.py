"""Start-up: the CLI imports only what a command uses (issue 11). Not timed: what is imported.

Each check runs in a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("stripe", "sqlalchemy", "alembic", "pandas", "numpy", "matplotlib", "pgserver", "psycopg", "requests")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    modules = set(json.loads(out.strip().splitlines()[-1]))
    return {name for name in HEAVY if name in modules}


def test_importing_the_cli_loads_no_heavy_package():
    assert loaded_after("import pmfin.cli") == set()


@pytest.mark.parametrize("args", [["--help"], ["report", "--help"], ["connect", "--help"], ["db", "--help"]])
def test_help_loads_no_heavy_package(args):
    code = (
        "import sys\nfrom pmfin.cli import app\n"
        f"try:\n    app({args!r}, prog_name='pmfin')\nexcept SystemExit:\n    pass\n"
    )
    assert loaded_after(code) == set()


def test_a_command_still_imports_its_service_on_use():
    """The lazy modules are real: touching one loads it (and what it needs)."""
    assert "sqlalchemy" in loaded_after("from pmfin.commands import connect\nconnect.service.parse_tenant_id")
