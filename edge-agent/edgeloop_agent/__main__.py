"""``edgeloop-agent serve``: load settings, build the app, run uvicorn."""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from edgeloop_agent.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    parser = argparse.ArgumentParser(
        prog="edgeloop-agent", description="edgeloop edge agent"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="serve the model over HTTP (and MQTT when enabled)"
    )
    serve.add_argument("--host", help="bind address (EDGELOOP_AGENT_SERVER__HOST)")
    serve.add_argument("--port", type=int, help="port (EDGELOOP_AGENT_SERVER__PORT)")
    serve.add_argument("--bundle", help="serve this bundle directory or URL only")
    serve.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"error: invalid settings: {str(exc).splitlines()[0]}", file=sys.stderr)
        raise SystemExit(2) from exc
    if args.host:
        settings.server.host = args.host
    if args.port:
        settings.server.port = args.port
    if args.bundle:
        settings.model.bundle = args.bundle
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    import uvicorn

    from edgeloop_agent.api.app import create_app
    from edgeloop_agent.api.quick_protocol import agent_http_protocol

    server = settings.server
    app = create_app(settings)
    # what the imports and the app built lives as long as the process: out of
    # the collector's way, so a full collection walks only what requests
    # allocate (shorter pauses at the latency's p99)
    gc.freeze()
    uvicorn.run(
        app,
        host=server.host,
        port=server.port,
        log_level=args.log_level,
        access_log=False,
        http=agent_http_protocol(app, server.header_timeout_s, server.body_timeout_s),
        timeout_keep_alive=int(max(1, server.keep_alive_s)),
        limit_concurrency=server.max_connections,
    )


if __name__ == "__main__":
    main()
