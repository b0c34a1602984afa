"""``python -m sddc_backup.persistence.migrate``: brings the state store named on standard input to the
newest schema revision, and exits. ``Database.bring_up_to_date`` runs it, so that alembic is loaded
only by this short-lived process."""

from __future__ import annotations

import asyncio
import sys

from sddc_backup.persistence.database import Database


async def _migrate(url: str) -> None:
    database = Database.open(url)
    try:
        await database.migrate()
    finally:
        await database.close()


def main() -> None:
    asyncio.run(_migrate(sys.stdin.read().strip()))


if __name__ == "__main__":
    main()
