"""Reconciliation against Stripe's ledger, proposed adjustments, and disputes (issue 8).

``pmfin_stripe_charges`` keeps every charge as a reconciliation read it — the raw object
(jsonb) beside typed columns, as dj-stripe does — so a run resumes where it stopped, the
comparison is SQL, memory stays flat, and an accountant can query what was read.

Revision ID: 0006_reconcile
"""

from alembic import op

revision = "0006_reconcile"
down_revision = "0005_dunning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_reconcile_runs (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind            text NOT NULL CHECK (kind IN ('fees', 'payments')),
            month           date NOT NULL CHECK (extract(day FROM month) = 1),
            tenant_id       uuid,                     -- --tenant, or null for all
            window_start    timestamptz NOT NULL,     -- charges read: the month with a day's margin
            window_end      timestamptz NOT NULL,
            status          text NOT NULL DEFAULT 'reading' CHECK (status IN ('reading', 'done')),
            pages           integer NOT NULL DEFAULT 0,
            charges_read    integer NOT NULL DEFAULT 0,
            started_at      timestamptz NOT NULL DEFAULT now(),
            read_at         timestamptz,              -- when the read of Stripe's charges ended
            finished_at     timestamptz,
            previous_run_id bigint,
            summary         jsonb
        )
        """
    )
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_reconcile_runs_month ON pmfin_reconcile_runs (kind, month, id)")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_reconcile_slices (
            run_id      bigint NOT NULL REFERENCES pmfin_reconcile_runs (id) ON DELETE CASCADE,
            slice_start timestamptz NOT NULL,         -- the window is read as day slices, in parallel
            slice_end   timestamptz NOT NULL,
            cursor      text,                         -- the last charge of the slice's last stored page
            pages       integer NOT NULL DEFAULT 0,
            charges     integer NOT NULL DEFAULT 0,
            done        boolean NOT NULL DEFAULT false,
            PRIMARY KEY (run_id, slice_start)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_stripe_charges (
            id                     text PRIMARY KEY,
            created                timestamptz NOT NULL,
            amount                 bigint NOT NULL,
            currency               char(3) NOT NULL,
            status                 text NOT NULL,
            amount_refunded        bigint NOT NULL DEFAULT 0,
            disputed               boolean NOT NULL DEFAULT false,
            customer               text,
            payment_intent         text,
            destination            text,              -- transfer_data.destination
            transfer_data_amount   bigint,            -- transfer_data.amount (the transfer is then net)
            application_fee_amount bigint,
            transfer_id            text,
            transfer_amount        bigint,
            transfer_destination   text,
            fee                    bigint,            -- balance_transaction.fee
            fee_details            jsonb,             -- balance_transaction.fee_details
            net                    bigint,
            raw                    jsonb NOT NULL,
            read_by_run            bigint NOT NULL,
            read_at                timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_stripe_charges_run ON pmfin_stripe_charges (read_by_run, created)")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_reconcile_differences (
            run_id           bigint NOT NULL REFERENCES pmfin_reconcile_runs (id) ON DELETE CASCADE,
            id               bigint GENERATED ALWAYS AS IDENTITY,
            key              text NOT NULL,           -- the same difference in another run has the same key
            kind             text NOT NULL,
            stripe_charge_id text,
            payment_id       uuid,
            tenant_id        uuid,
            expected         text,                    -- integer minor units, or a status
            actual           text,
            currency         char(3),
            at_stake         bigint,                  -- minor units the difference puts in question
            detail           jsonb,
            PRIMARY KEY (run_id, id),
            UNIQUE (run_id, key)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_reconcile_adjustments (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            key              text NOT NULL,           -- the difference's key
            run_id           bigint NOT NULL REFERENCES pmfin_reconcile_runs (id),
            kind             text NOT NULL,
            tenant_id        uuid,
            payment_id       uuid,
            stripe_charge_id text,
            field            text,                    -- the payments column in question, if any
            current_value    text,
            proposed_value   text,
            action           text NOT NULL,           -- what a person would do, in words
            currency         char(3),
            status           text NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'approved', 'rejected')),
            created_at       timestamptz NOT NULL DEFAULT now(),
            decided_at       timestamptz,
            decided_by       text,
            note             text
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS pmfin_reconcile_adjustments_open ON pmfin_reconcile_adjustments (key) "
        "WHERE status = 'proposed'"
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_disputes (
            id                    text PRIMARY KEY,   -- du_… / dp_…
            tenant_id             uuid,
            charge_id             text,
            payment_intent        text,
            amount                bigint NOT NULL,
            currency              char(3) NOT NULL,
            reason                text,
            status                text NOT NULL,
            created               timestamptz NOT NULL,
            due_by                timestamptz,
            submission_count      integer NOT NULL DEFAULT 0,
            evidence_staged_at    timestamptz,
            evidence_submitted_at timestamptz,
            raw                   jsonb NOT NULL,
            synced_at             timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX IF NOT EXISTS pmfin_disputes_tenant ON pmfin_disputes (tenant_id, created)")


def downgrade() -> None:
    for table in ("pmfin_disputes", "pmfin_reconcile_adjustments", "pmfin_reconcile_differences",
                  "pmfin_stripe_charges", "pmfin_reconcile_slices", "pmfin_reconcile_runs"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
