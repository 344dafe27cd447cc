"""pmfin.frames: every report as a DataFrame, the same numbers as the command's JSON."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from sqlalchemy import create_engine

from pmfin import frames
from pmfin.db.url import normalize

MONTH, FIRST = "2025-05", "2025-01"


@pytest.fixture(scope="module")
def demo(demo_history):
    """(engine, cli) on the small demo history (14 months to 2025-06)."""
    url, cli = demo_history
    engine = create_engine(normalize(url))
    yield engine, cli
    engine.dispose()


def cli_json(cli, *args):
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def same(value, expected) -> bool:
    if value is pd.NA or value is None or (isinstance(value, float) and math.isnan(value)):
        return expected is None
    if isinstance(value, pd.Period):
        return str(value) == expected
    if isinstance(value, float):
        return expected is not None and value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    return value == expected


def assert_matches(df: pd.DataFrame, rows: list[dict]) -> None:
    flat = df.reset_index()
    assert len(flat) == len(rows)
    for got, want in zip(flat.to_dict("records"), rows):
        for column, value in got.items():
            if column in want:
                assert same(value, want[column]), (column, value, want[column])


def test_frames_have_the_documented_types(demo):
    engine, _ = demo
    df = frames.movements(engine, FIRST, MONTH)
    assert str(df.index.dtype) == "period[M]" and len(df) == 5
    assert (str(df["mrr"].dtype), str(df["customers"].dtype), str(df["mom_growth"].dtype), str(df["currency"].dtype)) == (
        "Int64", "Int64", "Float64", "string")
    assert df.loc[pd.Period(MONTH, freq="M"), "mrr"] == frames.mrr(engine, MONTH)["mrr"].iloc[0]
    ltv = frames.ltv(engine, "2024-06")  # the history's first month: no churn yet, LTV undefined
    assert ltv["ltv"].iloc[0] is pd.NA and isinstance(ltv["reason"].iloc[0], str)


def test_revenue_metrics_frames_agree_with_the_cli(demo):
    engine, cli = demo
    assert_matches(frames.movements(engine, FIRST, MONTH), cli_json(cli, "report", "movements", "--from", FIRST, "--to", MONTH))
    assert_matches(frames.mrr(engine, MONTH), [cli_json(cli, "report", "mrr", "--month", MONTH)])
    doc = cli_json(cli, "report", "churn", "--month", MONTH, "--tenants")
    assert_matches(frames.churn(engine, MONTH), [doc["churn"]])
    assert_matches(frames.churned_tenants(engine, MONTH), doc["tenants"])
    assert_matches(frames.retention(engine, MONTH, 3), [cli_json(cli, "report", "retention", "--month", MONTH, "--window", "3")])
    cohorts = frames.cohorts(engine, FIRST, MONTH, "revenue")
    for c in cli_json(cli, "report", "cohorts", "--from", FIRST, "--to", MONTH, "--by", "revenue"):
        rows = cohorts.loc[pd.Period(c["cohort"], freq="M")]
        assert all(same(v, w) for v, w in zip(rows["retention"], c["retention"]))
        assert set(rows["size"]) == {c["size"]} and set(rows["starting_mrr"]) == {c["starting_mrr"]}


def test_finance_frames_agree_with_the_cli(demo):
    engine, cli = demo
    doc = cli_json(cli, "report", "revenue", "--month", MONTH)
    df = frames.revenue(engine, MONTH)
    assert_matches(df, doc["streams"])
    assert df.attrs["connect_volume"] == doc["connect_volume"] and df.attrs["net"] == doc["net"]
    doc = cli_json(cli, "report", "costs", "--month", MONTH, "--trend", "3")
    assert_matches(frames.costs(engine, MONTH), doc["lines"])
    assert_matches(frames.cost_trend(engine, MONTH, 3), doc["trend"])
    assert_matches(frames.ltv(engine, MONTH), [cli_json(cli, "report", "ltv", "--month", MONTH)])
    assert_matches(frames.cac(engine, MONTH), [cli_json(cli, "report", "cac", "--month", MONTH)])
    assert_matches(frames.breakeven(engine, MONTH, fixed_costs=100),
                   [cli_json(cli, "report", "breakeven", "--month", MONTH, "--fixed-costs", "1")])
    doc = cli_json(cli, "report", "cashflow", "--from", "2025-06", "--starting-cash", "100000", "--months", "3")
    df = frames.cashflow(engine, "2025-06", 10_000_000, 3)
    assert_matches(df, doc["months"])
    assert df.attrs["assumptions"] == doc["assumptions"] and df.attrs["runway"] == doc["runway"]
    doc = cli_json(cli, "report", "summary", "--month", MONTH, "--cash", "100000")
    flat = {**doc["unit_economics"], **doc["burn"], **doc["growth"], **doc["overview"], "month": doc["month"]}
    assert_matches(frames.summary(engine, MONTH, cash=10_000_000), [flat])


def test_importing_frames_is_what_loads_pandas():
    """The command line never imports pmfin.frames (tests/test_startup.py: no pandas at start-up)."""
    import subprocess
    import sys

    code = "import sys, pmfin.cli; assert 'pandas' not in sys.modules; import pmfin.frames; assert 'pandas' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
