from sqlalchemy import text


def test_schema_fixture_has_contract(engine):
    with engine.connect() as conn:
        assert conn.execute(text("select current_schema()")).scalar().startswith("t_")
        assert conn.execute(text("select count(*) from tenants")).scalar() == 0


def test_cli_db_status(cli):
    r = cli("db", "status", "--format", "json")
    assert r.exit_code == 0, r.output
    assert '"up_to_date": true' in r.stdout
