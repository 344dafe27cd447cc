"""Every key of every report's JSON is documented in the README, and follows one naming rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SECTION = README.split("## Reports as JSON: every key", 1)[1].split("\n## ", 1)[0]
BLOCKS = {m.group(1): m.group(2) for m in re.finditer(r"#### (.*?)\n(.*?)(?=\n#### |\Z)", SECTION, re.S)}

COMMANDS = {
    "report mrr": ["report", "mrr", "--month", "2025-05"],
    "report movements": ["report", "movements", "--from", "2025-03", "--to", "2025-05"],
    "report churn": ["report", "churn", "--month", "2025-05", "--tenants"],
    "report retention": ["report", "retention", "--month", "2025-05", "--window", "3"],
    "report cohorts": ["report", "cohorts", "--from", "2025-01", "--to", "2025-05"],
    "report revenue": ["report", "revenue", "--month", "2025-05"],
    "report costs": ["report", "costs", "--month", "2025-05"],
    "report ltv": ["report", "ltv", "--month", "2025-05"],
    "report cac": ["report", "cac", "--month", "2025-05"],
    "report breakeven": ["report", "breakeven", "--month", "2025-05", "--fixed-costs", "1"],
    "report cashflow": ["report", "cashflow", "--from", "2025-06", "--starting-cash", "100000", "--months", "2"],
    "report summary": ["report", "summary", "--month", "2025-05", "--cash", "100000"],
    "costs list": ["costs", "list", "--from", "2025-05"],
    "fx list": ["fx", "list", "--month", "2025-05"],
}


def paths(obj, prefix: str = "") -> list[str]:
    out = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            path = f"{prefix}.{key}" if prefix else key
            out += [path, *paths(value, path)]
    elif isinstance(obj, list) and obj and isinstance(obj[0], (dict, list)):
        out += paths(obj[0], f"{prefix}[]")
    return out


@pytest.fixture(scope="module")
def documents(demo_history):
    _, cli = demo_history
    out = {}
    for command, args in COMMANDS.items():
        result = cli(*args, "--format", "json")
        assert result.exit_code == 0, (command, result.output)
        out[command] = json.loads(result.stdout)
    return out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_key_is_in_the_readme(documents, command):
    (block,) = [text for heading, text in BLOCKS.items() if f"`{command}`" in heading]
    found = sorted({p for p in paths(documents[command])})
    assert found, command
    missing = [p for p in found if any(f"`{seg}`" not in block for seg in p.replace("[]", "").split(".") if seg)]
    assert missing == [], f"{command}: keys not in the README's JSON section: {missing}"


def test_one_naming_rule_for_money_and_months(documents):
    """Money under plain names (no *_cents) with a currency in the same object; months YYYY-MM."""

    def walk(obj, where):
        if isinstance(obj, dict):
            assert not any(k.endswith("_cents") for k in obj), (where, list(obj))
            money = {"mrr", "arr", "net", "gross", "amount", "total", "fixed_costs", "ltv", "cac", "ending_cash"}
            if any(isinstance(obj.get(k), int) for k in money):
                assert "currency" in obj, (where, list(obj))
            for k, v in obj.items():
                if k in ("month", "first", "cohort", "start_month", "cash_out_month") and v is not None:
                    assert re.fullmatch(r"\d{4}-\d{2}", v), (where, k, v)
                walk(v, f"{where}.{k}")
        elif isinstance(obj, list):
            for item in obj:
                walk(item, where + "[]")

    for command, doc in documents.items():
        walk(doc, command)
    assert documents["report cashflow"]["assumptions"]["first"] == "2025-06"  # was {"year": …, "month": …}
