"""Connect accounts as ``pmfin connect sync`` last saw them (so ``status --all`` needs no Stripe).

Revision ID: 0003_connect_accounts
"""

from alembic import op

revision = "0003_connect_accounts"
down_revision = "0002_costs_fx"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_connect_accounts (
            tenant_id         uuid NOT NULL,
            stripe_account_id text NOT NULL UNIQUE,
            status            text NOT NULL CHECK (status IN ('pending', 'complete')),
            details_submitted boolean NOT NULL DEFAULT false,
            charges_enabled   boolean NOT NULL DEFAULT false,
            payouts_enabled   boolean NOT NULL DEFAULT false,
            currently_due     text[] NOT NULL DEFAULT '{}',
            past_due          text[] NOT NULL DEFAULT '{}',
            disabled_reason   text,
            requirements      jsonb,             -- the account's requirements hash as Stripe sent it
            raw               jsonb NOT NULL,    -- the whole account object as Stripe sent it
            synced_at         timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS pmfin_connect_accounts")
