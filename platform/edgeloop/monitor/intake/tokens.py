"""Per-node tokens: issue, rotate, resolve, and the identity they carry.

A token says which node is speaking; the node's **site and cohort** are pinned
to its token as well (given when it is issued, or taken from the node's first
report), and override whatever later reports claim. A node that is
compromised can then lie about its own readings, but cannot report as another
node or into another site's drift statistics and triggers.

Rotation keeps two tokens valid for a window: the new one, and the old one
until ``previous_expires_at``, so agents can pick up the new Secret without
a gap.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from edgeloop.core.errors import NotFoundError
from edgeloop.monitor.intake.tables import token_hash, tokens
from edgeloop_agent.contracts import Report


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to."""

    node: str
    site: str = ""
    cohort: str = ""
    role: str = "node"
    """``node`` posts its own reports; ``reader`` reads the fleet views (the
    controller, dashboards): neither can do the other's part."""


def create(
    engine: sa.Engine, node: str, site: str = "", cohort: str = "", role: str = "node"
) -> str:
    """A new token for ``node`` (replacing any old one at once); shown once."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(tokens.delete().where(tokens.c.node == node))
        conn.execute(
            tokens.insert().values(
                node=node,
                token_sha256=token_hash(token),
                created_at=datetime.now(UTC),
                site=site,
                cohort=cohort,
                role=role,
            )
        )
    return token


def rotate(engine: sa.Engine, node: str, window: timedelta) -> tuple[str, datetime]:
    """A new token for ``node``; the current one stays valid for ``window``."""
    token = secrets.token_urlsafe(32)
    until = datetime.now(UTC) + window
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(tokens.c.token_sha256).where(tokens.c.node == node)
        ).first()
        if row is None:
            raise NotFoundError(
                f"node {node!r} has no token to rotate; create one: "
                f"edgeloop intake token create {node}"
            )
        conn.execute(
            tokens.update()
            .where(tokens.c.node == node)
            .values(
                token_sha256=token_hash(token),
                previous_sha256=row[0],
                previous_expires_at=until,
            )
        )
    return token, until


def resolve(engine: sa.Engine, token: str) -> Identity | None:
    """The identity a bearer token belongs to (current or still-valid previous)."""
    digest = token_hash(token)
    columns = sa.select(
        tokens.c.node,
        tokens.c.site,
        tokens.c.cohort,
        tokens.c.role,
        tokens.c.token_sha256,
        tokens.c.previous_expires_at,
    )
    # two indexed lookups, the current token first: one ``a OR b`` over two
    # columns was a scan of every token on SQLite, on every POST
    with engine.connect() as conn:
        row = conn.execute(columns.where(tokens.c.token_sha256 == digest)).first()
        if row is None:
            row = conn.execute(
                columns.where(tokens.c.previous_sha256 == digest)
            ).first()
    if row is None:
        return None
    node, site, cohort, role, current, expires = row
    if current != digest:  # the previous token: only inside its window
        if expires is None:
            return None
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        if expires < datetime.now(UTC):
            return None
    return Identity(str(node), str(site or ""), str(cohort or ""), str(role or "node"))


def pin(engine: sa.Engine, identity: Identity, reports: list[Report]) -> list[Report]:
    """Reports with the site (and cohort, if issued with one) their token pins.

    A token issued without a site is pinned to the site of the node's first
    report (trust on first use).
    """
    site, cohort = identity.site, identity.cohort
    if not site:
        site = reports[0].body.site
        with engine.begin() as conn:
            conn.execute(
                tokens.update()
                .where((tokens.c.node == identity.node) & (tokens.c.site == ""))
                .values(site=site)
            )
    out = []
    for report in reports:
        body = report.body
        if body.site != site or (cohort and body.cohort != cohort):
            body = body.model_copy(
                update={"site": site, "cohort": cohort or body.cohort}
            )
            report = report.model_copy(update={"body": body})
        out.append(report)
    return out
