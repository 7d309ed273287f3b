"""A helper process of a benchmark: runs until its stdin closes, then prints JSON.

The health probe and the flooding node each run as their own interpreter (a
thread of the load generator would wait for that process's GIL and measure it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any


class Child:
    """``python -m MODULE ARGS…``: started, then stopped for what it printed."""

    def __init__(self, module: str, *args: object) -> None:
        self.argv = [sys.executable, "-m", module, *map(str, args)]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def stop(self) -> Any | None:
        """Close its stdin (the signal to stop) and parse what it printed; None if not running."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        out, _ = proc.communicate(timeout=120)
        return json.loads(out)


def stdin_closed() -> asyncio.Future[None]:
    """In the child: a future done when its parent closes stdin (the signal to stop)."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def closed() -> None:
        loop.remove_reader(sys.stdin.fileno())
        stop.set_result(None)

    loop.add_reader(sys.stdin.fileno(), closed)
    return stop
