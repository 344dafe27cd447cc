"""Connect: each account creation's intent, recorded before Stripe is asked; the last sync failure of each account.

- ``pmfin_connect_intents``: ``connect create`` records (tenant, idempotency key, time) and commits
  it before it asks Stripe for an account, and marks it finished in the transaction that stores
  the account. An unfinished intent is the only case in which a rerun has to look at Stripe for an
  account the earlier attempt may have made (its commit lost).
- ``pmfin_connect_failures``: the last time ``connect sync`` could not read a tenant's account, and
  why (``connect status --all`` shows it); a later successful read removes it.

Revision ID: 0004_connect_intents
"""

from alembic import op

revision = "0004_connect_intents"
down_revision = "0003_connect_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_connect_intents (
            tenant_id         uuid NOT NULL,
            idempotency_key   text NOT NULL,
            started_at        timestamptz NOT NULL DEFAULT now(),  -- the latest attempt began (before Stripe was asked)
            finished_at       timestamptz,                          -- null: that attempt never stored an account
            stripe_account_id text,                                 -- the account it stored
            PRIMARY KEY (tenant_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_connect_failures (
            tenant_id         uuid NOT NULL,
            stripe_account_id text NOT NULL,
            error             text NOT NULL,                        -- the one line the sync reported
            failed_at         timestamptz NOT NULL,
            PRIMARY KEY (tenant_id)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS pmfin_connect_failures")
    op.execute("DROP TABLE IF EXISTS pmfin_connect_intents")
