"""The backup catalog: every backup this service wrote, and when its content was last verified.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("location", sa.String(512), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("modified_at", sa.DateTime(), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("backups")
