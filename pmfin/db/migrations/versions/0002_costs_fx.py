"""Monthly costs (``pmfin costs import``) and FX rates for reporting in one currency.

Revision ID: 0002_costs_fx
"""

from alembic import op

revision = "0002_costs_fx"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_costs (
            month        date NOT NULL CHECK (extract(day FROM month) = 1),  -- first day of the month
            category     text NOT NULL,        -- infrastructure, personnel, marketing, sales, operations, legal, …
            kind         text NOT NULL CHECK (kind IN ('fixed', 'variable')),
            amount_cents bigint NOT NULL,
            currency     char(3) NOT NULL,
            source       text,                 -- file it came from, or 'demo'
            imported_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (month, category, kind, currency)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_fx_rates (
            month          date NOT NULL CHECK (extract(day FROM month) = 1),
            base_currency  char(3) NOT NULL,   -- 1 unit of base ...
            quote_currency char(3) NOT NULL,   -- ... is `rate` units of quote (major units)
            rate           numeric(20, 10) NOT NULL CHECK (rate > 0),
            source         text,
            imported_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (month, base_currency, quote_currency)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS pmfin_fx_rates")
    op.execute("DROP TABLE IF EXISTS pmfin_costs")
