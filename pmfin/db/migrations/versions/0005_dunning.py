"""Dunning cases, payment attempts, notifications and dashboard alerts (issue 7).

Every tenant-scoped table has ``tenant_id`` first in its primary key (DESIGN.md §2). Stripe ids
that identify a row across tenants (an invoice, an idempotency key) carry a unique index of
their own. Notifications and alerts hold platform-level rows too (tenant_id null: a message to
finance, a platform-wide banner), so their key is the id alone, with an index on tenant_id.

Revision ID: 0005_dunning
"""

from alembic import op

revision = "0005_dunning"
down_revision = "0004_connect_intents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_dunning_cases (
            tenant_id          uuid NOT NULL,
            invoice_id         text NOT NULL,          -- Stripe invoice in_…
            customer_id        text,
            invoice_number     text,
            amount_due         bigint NOT NULL,        -- minor units, as last read from Stripe
            currency           char(3) NOT NULL,
            hosted_invoice_url text,
            day0               timestamptz NOT NULL,   -- the first failed payment of the invoice
            source             text NOT NULL CHECK (source IN ('payments', 'event')),
            status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'recovered', 'written_off')),
            stage              text NOT NULL DEFAULT 'grace' CHECK (stage IN ('grace', 'restricted', 'suspended')),
            opened_at          timestamptz NOT NULL,   -- the run's instant (--as-of) that opened it
            closed_at          timestamptz,
            close_reason       text CHECK (close_reason IN ('paid_by_retry', 'paid_elsewhere', 'voided', 'uncollectible')),
            amount_recovered   bigint,
            invoice_status     text,                   -- as last read from Stripe
            checked_at         timestamptz,            -- wall clock of that read
            PRIMARY KEY (tenant_id, invoice_id),
            CHECK ((status = 'open') = (closed_at IS NULL))
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS pmfin_dunning_cases_invoice ON pmfin_dunning_cases (invoice_id)")
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_dunning_cases_open ON pmfin_dunning_cases (day0) WHERE status = 'open'")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_dunning_slots (
            tenant_id   uuid NOT NULL,
            invoice_id  text NOT NULL,
            slot        integer NOT NULL,             -- the retry day: 1, 3, 5
            due_at      timestamptz NOT NULL,
            outcome     text NOT NULL CHECK (outcome IN ('paid', 'declined', 'no_card', 'skipped')),
            decided_at  timestamptz NOT NULL,        -- the run's instant (--as-of)
            finished_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, invoice_id, slot),
            FOREIGN KEY (tenant_id, invoice_id) REFERENCES pmfin_dunning_cases (tenant_id, invoice_id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_payment_attempts (
            tenant_id         uuid NOT NULL,
            id                bigint GENERATED ALWAYS AS IDENTITY,
            invoice_id        text NOT NULL,
            origin            text NOT NULL CHECK (origin IN ('dunning', 'manual')),
            slot              integer,                -- dunning: the retry day; manual: null
            payment_method_id text NOT NULL,
            card              text,                   -- 'visa •••• 4242 exp 12/2030'
            idempotency_key   text NOT NULL,
            amount            bigint,
            currency          char(3),
            started_at        timestamptz NOT NULL DEFAULT now(),  -- committed before the Stripe call
            finished_at       timestamptz,                         -- null: the answer never arrived
            outcome           text CHECK (outcome IN ('succeeded', 'declined', 'refused', 'unknown')),
            code              text,
            decline_code      text,
            hard              boolean,
            message           text,
            request_id        text,
            PRIMARY KEY (tenant_id, id)
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS pmfin_payment_attempts_key ON pmfin_payment_attempts (idempotency_key)"
    )
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_payment_attempts_invoice ON pmfin_payment_attempts (invoice_id)")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_dunning_ignored (
            tenant_id      uuid NOT NULL,
            invoice_id     text NOT NULL,
            invoice_status text NOT NULL,            -- paid / void / uncollectible when first looked at
            checked_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, invoice_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_dunning_runs (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            as_of       timestamptz NOT NULL,
            started_at  timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            exit_code   integer,
            summary     jsonb
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_notifications (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id       uuid,                   -- null: a platform-level message (to finance)
            key             text NOT NULL,          -- one event, told once (dunning, invoice id, event: colon-joined)
            kind            text NOT NULL,
            severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
            subject         text NOT NULL,
            body            text NOT NULL,
            recipient       text,                   -- the billing email when the event happened
            invoice_id      text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            email_status    text NOT NULL DEFAULT 'pending'
                            CHECK (email_status IN ('pending', 'sent', 'refused', 'no_recipient', 'not_configured')),
            attempts        integer NOT NULL DEFAULT 0,
            last_attempt_at timestamptz,
            last_error      text,
            sent_at         timestamptz
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS pmfin_notifications_key ON pmfin_notifications (key)")
    op.execute(
        "CREATE INDEX IF NOT EXISTS pmfin_notifications_pending ON pmfin_notifications (id) WHERE email_status = 'pending'"
    )
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_notifications_tenant ON pmfin_notifications (tenant_id, created_at)")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_alerts (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id   uuid,                       -- null: a platform-wide banner (e.g. Stripe unreachable)
            key         text NOT NULL,              -- the notification's key
            kind        text NOT NULL,
            severity    text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
            message     text NOT NULL,
            invoice_id  text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            resolved_at timestamptz                 -- null: the app shows it as a banner
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS pmfin_alerts_key ON pmfin_alerts (key)")
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_alerts_open ON pmfin_alerts (tenant_id) WHERE resolved_at IS NULL")


def downgrade() -> None:
    for table in (
        "pmfin_alerts",
        "pmfin_notifications",
        "pmfin_dunning_runs",
        "pmfin_dunning_ignored",
        "pmfin_payment_attempts",
        "pmfin_dunning_slots",
        "pmfin_dunning_cases",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
