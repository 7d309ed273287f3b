"""Leader election by a lock row: one loop service acts, the others wait.

The row lives in the database the replicas already share (the intake's store:
SQLite for one machine, PostgreSQL in a cluster), so no extra component is
needed. A holder renews its lease every tick; if it dies, another replica takes
over once the lease expires. Taking and renewing are one conditional
``UPDATE``, atomic in both databases, so two replicas can never both hold it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from edgeloop.loop.tables import create_all, leases


class LeaderLock:
    """A named lease held by one ``holder`` at a time, for ``ttl_s`` seconds per renewal."""

    def __init__(
        self, engine: sa.Engine, holder: str, name: str = "loop", ttl_s: float = 60.0
    ) -> None:
        self.engine = engine
        self.holder = holder
        self.name = name
        self.ttl = timedelta(seconds=ttl_s)
        create_all(engine)

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the lease; True when this holder leads until ``now + ttl``."""
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(leases.c.name).where(leases.c.name == self.name)
            ).first()
            if exists is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            leases.insert().values(
                                name=self.name,
                                holder=self.holder,
                                expires_at=now + self.ttl,
                            )
                        )
                    return True
                except sa.exc.IntegrityError:
                    pass  # another replica inserted it first: fall through
            taken = conn.execute(
                leases.update()
                .where(
                    (leases.c.name == self.name)
                    & ((leases.c.holder == self.holder) | (leases.c.expires_at < now))
                )
                .values(holder=self.holder, expires_at=now + self.ttl)
            )
            return bool(taken.rowcount == 1)

    def release(self) -> None:
        """Give the lease up (on a clean shutdown) so another replica need not wait."""
        with self.engine.begin() as conn:
            conn.execute(
                leases.delete().where(
                    (leases.c.name == self.name) & (leases.c.holder == self.holder)
                )
            )

    def leader(self) -> str | None:
        """Who holds the lease now (for status), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(leases.c.holder, leases.c.expires_at).where(
                    leases.c.name == self.name
                )
            ).first()
        if row is None:
            return None
        expires = (
            row.expires_at
            if row.expires_at.tzinfo
            else row.expires_at.replace(tzinfo=UTC)
        )
        return str(row.holder) if expires > datetime.now(UTC) else None
