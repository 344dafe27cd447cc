"""pmfin's first own tables: what the demo created (so it never touches anything else).

Revision ID: 0001_initial
"""

from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS pmfin_demo_objects (
            kind       text NOT NULL,          -- 'tenant', 'plan', 'addon', 'system_config'
            object_id  text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            seed       bigint,
            PRIMARY KEY (kind, object_id)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS pmfin_demo_objects")
