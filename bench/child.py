"""A helper process of a benchmark: runs until its stdin closes, then prints JSON.

The health probe and the flooding node each run as their own interpreter (a
thread of the load generator would wait for that process's GIL and measure it).
"""

from __future__ import annotations

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
