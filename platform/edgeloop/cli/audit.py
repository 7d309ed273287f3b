"""``edgeloop audit``: read and verify the append-only audit log."""

from __future__ import annotations

import typer

from edgeloop.cli.output import emit

app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: str = typer.Option(
        "",
        help="Only records of this kind (dataset, training, registered, promoted, rollout, trigger, labels).",
    ),
    subject: str = typer.Option(
        "", help="Only records about this subject (e.g. pump-failure:2)."
    ),
) -> None:
    """Records, oldest first."""
    from edgeloop.core.settings import load_settings
    from edgeloop.provenance.audit import AuditLog

    records = AuditLog(load_settings().audit_path()).records(kind, subject)
    emit(
        ctx,
        [
            {
                "at": r["at"],
                "kind": r["kind"],
                "subject": r["subject"],
                "details": r["details"],
            }
            for r in records
        ],
        title="audit log",
    )


@app.command()
def verify(ctx: typer.Context) -> None:
    """Check the hash chain end to end (exit 1 naming the first broken line)."""
    from edgeloop.core.settings import load_settings
    from edgeloop.provenance.audit import AuditLog

    log = AuditLog(load_settings().audit_path())
    emit(ctx, {"path": str(log.path), "records": log.verify(), "chain": "intact"})
