"""Stripe events (webhooks and events sync), retries on a new card, and the outbox (issue 9).

Revision ID: 0007_events
"""

from alembic import op

revision = "0007_events"
down_revision = "0006_reconcile"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_events (
            id              text PRIMARY KEY,          -- evt_…: a delivery seen twice is stored once
            type            text NOT NULL,
            created         timestamptz NOT NULL,      -- Stripe's
            account         text,                      -- the connected account of a Connect event
            livemode        boolean NOT NULL DEFAULT false,
            api_version     text,
            source          text NOT NULL CHECK (source IN ('webhook', 'sync')),
            payload         jsonb NOT NULL,            -- the event as received, stored before it is acted on
            received_at     timestamptz NOT NULL DEFAULT now(),
            processed_at    timestamptz,
            result          text,                      -- what the handler did, in words
            attempts        integer NOT NULL DEFAULT 0,
            last_attempt_at timestamptz,
            error           text                       -- the last attempt's error, one line
        )
        """
    )
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_events_pending ON pmfin_events (created) WHERE processed_at IS NULL")
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_events_received ON pmfin_events (received_at DESC)")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_event_cursors (
            name          text PRIMARY KEY,            -- 'platform'
            event_id      text NOT NULL,               -- the newest event events sync has stored
            event_created timestamptz NOT NULL,
            updated_at    timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_dunning_card_retries (
            tenant_id         uuid NOT NULL,
            invoice_id        text NOT NULL,
            payment_method_id text NOT NULL,
            event_id          text,                    -- the event that brought the new card
            created_at        timestamptz NOT NULL DEFAULT now(),
            attempted_at      timestamptz,             -- the dunning run that tried it
            outcome           text,
            PRIMARY KEY (tenant_id, invoice_id, payment_method_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_outbox (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind            text NOT NULL,             -- 'invoices.pay', 'connect.create', 'subscription.change'
            tenant_id       uuid,
            params          jsonb NOT NULL,            -- what to replay
            idempotency_key text NOT NULL UNIQUE,      -- one request per key, however often it is flushed
            status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'done', 'failed')),
            attempts        integer NOT NULL DEFAULT 0,
            last_attempt_at timestamptz,
            last_error      text,
            result          jsonb,
            queued_by       text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            done_at         timestamptz
        )
        """
    )


def downgrade() -> None:
    for table in ("pmfin_outbox", "pmfin_dunning_card_retries", "pmfin_event_cursors", "pmfin_events"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
