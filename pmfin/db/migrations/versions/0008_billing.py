"""Tenant billing (issue 10): plan changes and default-card changes, each recorded before Stripe is asked.

- ``pmfin_plan_changes``: ``subscription change`` records the change it is about to make — the
  exact request (item, new price, proration date and behaviour), its idempotency key and the
  preview's figures — and commits it before ``POST /v1/subscriptions/{id}``. The transaction that
  writes the platform's ``subscriptions`` history (the current row ended with 'plan_change', the
  next row started at the same instant) marks it applied. A change whose answer never arrived stays
  'pending': the next run for the tenant sends the same request under the same key (Stripe answers
  it once), so it cannot apply twice.
- ``pmfin_payment_method_changes``: ``payment-methods set-default`` records who set which card as
  the default, when, and under which key (a rerun after a lost answer re-sends that key); an
  audit trail for "who changed my card?".

Revision ID: 0008_billing
"""

from alembic import op

revision = "0008_billing"
down_revision = "0007_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_plan_changes (
            tenant_id              uuid NOT NULL,
            id                     bigint GENERATED ALWAYS AS IDENTITY,
            idempotency_key        text NOT NULL,
            stripe_subscription_id text NOT NULL,
            stripe_item_id         text NOT NULL,
            from_row_id            uuid NOT NULL,         -- the subscriptions row the change ends
            from_plan_id           text NOT NULL,
            to_plan_id             text NOT NULL,
            to_price_id            text NOT NULL,         -- the Stripe price of the new plan
            proration_date         timestamptz NOT NULL,  -- the preview's; the instant the change takes effect
            request                jsonb NOT NULL,        -- the exact parameters sent (a rerun sends them again)
            credit                 bigint NOT NULL,       -- preview: unused time of the old plan (≤ 0), minor units
            charge                 bigint NOT NULL,       -- preview: the new plan's remaining time (≥ 0)
            currency               char(3) NOT NULL,
            requested_by           text,
            requested_at           timestamptz NOT NULL DEFAULT now(),  -- committed before the Stripe call
            finished_at            timestamptz,                          -- null: the answer never arrived
            status                 text NOT NULL DEFAULT 'pending'
                                   CHECK (status IN ('pending', 'applied', 'declined', 'refused', 'not_applied')),
            message                text,
            stripe_invoice_id      text,                  -- the invoice the change made at once
            to_row_id              uuid,                  -- the subscriptions row it started
            PRIMARY KEY (tenant_id, id)
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS pmfin_plan_changes_key ON pmfin_plan_changes (idempotency_key)")
    op.execute(
        "CREATE INDEX IF NOT EXISTS pmfin_plan_changes_pending ON pmfin_plan_changes (tenant_id) WHERE status = 'pending'"
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_payment_method_changes (
            tenant_id         uuid NOT NULL,
            id                bigint GENERATED ALWAYS AS IDENTITY,
            customer_id       text NOT NULL,
            payment_method_id text NOT NULL,
            previous_default  text,
            card              text,                   -- 'visa •••• 4242 exp 12/2030'
            idempotency_key   text NOT NULL,
            requested_by      text,
            requested_at      timestamptz NOT NULL DEFAULT now(),  -- committed before the Stripe call
            finished_at       timestamptz,
            outcome           text CHECK (outcome IN ('succeeded', 'refused')),
            message           text,
            PRIMARY KEY (tenant_id, id)
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS pmfin_payment_method_changes_key ON pmfin_payment_method_changes (idempotency_key)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS pmfin_payment_method_changes")
    op.execute("DROP TABLE IF EXISTS pmfin_plan_changes")
