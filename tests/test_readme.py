"""The README cannot go stale: every command is documented, and CI runs the README's test command."""

from pathlib import Path

import typer
import typer.testing

from pmfin.cli import app

ROOT = Path(__file__).resolve().parents[1]


def leaf_commands() -> list[str]:
    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path)

    return list(walk(typer.main.get_command(app), []))


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    commands = leaf_commands()
    assert len(commands) > 5
    missing = [c for c in commands if f"pmfin {c}" not in readme]
    assert missing == [], f"commands missing from README.md: {missing}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Tests", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    readme_command = [line.strip() for line in section.strip().splitlines()][-1]
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == readme_command


def test_every_command_has_help():
    for command in leaf_commands():
        result = typer.testing.CliRunner().invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, command
        assert "Usage" in result.stdout
        assert "<bool>" not in result.stdout, command  # a flag takes no value (pmfin.typer_compat)
