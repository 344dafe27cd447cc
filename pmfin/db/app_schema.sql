-- The PenguinMails data contract (DESIGN.md §2): the tables the platform already has.
-- pmfin creates them only where missing (`pmfin db init --app-schema`), for local use, demos
-- and tests. Every column beyond ids and the contract's NOT NULL list is nullable or has a
-- default, so rows written by the platform (naming only what it knows) insert cleanly.
-- Tenant-scoped tables have tenant_id first in their primary key (NileDB / Citus distribution).

CREATE TABLE IF NOT EXISTS tenants (
    id       uuid PRIMARY KEY,
    name     text,
    created  timestamptz NOT NULL DEFAULT now(),
    deleted  timestamptz
);

CREATE TABLE IF NOT EXISTS tenant_users (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    email     text,
    created   timestamptz NOT NULL DEFAULT now(),
    deleted   timestamptz,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE IF NOT EXISTS tenant_config (
    tenant_id          uuid PRIMARY KEY REFERENCES tenants (id),
    billing_email      text,
    country            char(2),
    currency           char(3) NOT NULL DEFAULT 'usd',
    stripe_customer_id varchar(255) UNIQUE,
    stripe_account_id  varchar(255) UNIQUE,
    billing_status     text NOT NULL DEFAULT 'active',
    created            timestamptz NOT NULL DEFAULT now(),
    updated            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS system_config (
    key     text PRIMARY KEY,
    value   text,
    updated timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS plans (
    id              text PRIMARY KEY,
    name            text,
    tier            text,
    billing_cycle   text NOT NULL DEFAULT 'month',
    price_cents     integer NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
    currency        char(3) NOT NULL DEFAULT 'usd',
    email_limit     integer,
    ip_limit        integer,
    seat_limit      integer,
    stripe_price_id text,
    active          boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS addons (
    id              text PRIMARY KEY,
    name            text,
    billing_cycle   text NOT NULL DEFAULT 'month',
    price_cents     integer NOT NULL DEFAULT 0,
    currency        char(3) NOT NULL DEFAULT 'usd',
    stripe_price_id text
);

CREATE TABLE IF NOT EXISTS subscriptions (
    tenant_id              uuid NOT NULL,
    id                     uuid NOT NULL,
    plan_id                text NOT NULL REFERENCES plans (id),
    status                 text,
    quantity               integer NOT NULL DEFAULT 1 CHECK (quantity >= 1),
    unit_price_cents       integer NOT NULL,
    currency               char(3) NOT NULL,
    started_at             timestamptz NOT NULL,
    trial_ends_at          timestamptz,
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    canceled_at            timestamptz,
    ended_at               timestamptz,
    end_reason             text,
    stripe_subscription_id text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS subscriptions_span_idx ON subscriptions (started_at, ended_at);

CREATE TABLE IF NOT EXISTS subscription_addons (
    tenant_id                   uuid NOT NULL,
    id                          uuid NOT NULL,
    addon_id                    text NOT NULL REFERENCES addons (id),
    quantity                    integer NOT NULL DEFAULT 1,
    unit_price_cents            integer NOT NULL,
    currency                    char(3) NOT NULL,
    started_at                  timestamptz NOT NULL,
    ended_at                    timestamptz,
    stripe_subscription_item_id text,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE IF NOT EXISTS payments (
    tenant_id                uuid NOT NULL,
    id                       uuid NOT NULL,
    stripe_payment_intent_id text,
    stripe_charge_id         text UNIQUE,
    stripe_invoice_id        text,
    stripe_account_id        text,
    revenue_stream           text,
    amount_cents             integer NOT NULL,
    currency                 char(3) NOT NULL,
    status                   text NOT NULL,
    refunded_cents           integer NOT NULL DEFAULT 0,
    fee_cents                integer,
    application_fee_cents    integer,
    failure_code             text,
    failure_message          text,
    created_at               timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS payments_created_idx ON payments (created_at);

CREATE TABLE IF NOT EXISTS campaigns (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL,
    name       text,
    status     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE IF NOT EXISTS emails (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    campaign_id uuid,
    status      text,
    sent_at     timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS emails_sent_idx ON emails (sent_at);

CREATE TABLE IF NOT EXISTS ip_allocations (
    tenant_id        uuid NOT NULL,
    ip               inet NOT NULL,
    reputation_score numeric(5, 2),
    allocated_at     timestamptz NOT NULL DEFAULT now(),
    released_at      timestamptz,
    PRIMARY KEY (tenant_id, ip, allocated_at)
);
