"""The demo's child processes: real ``edgeloop-agent serve`` agents and mosquitto.

Each agent is configured the way a pod is, by environment only. Every process
started here is stopped when its context exits (also on Ctrl-C), and recorded in
``<home>/processes.jsonl`` (PID and kernel start time) so a check can look at
exactly the processes this demo started, not at whatever else the machine runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edgeloop.core.errors import EdgeloopError
from edgeloop.demo.link import free_port


def wait_http(
    url: str, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 60
) -> None:
    """Wait until ``url`` answers 200 while ``proc`` lives.

    Raises:
        EdgeloopError: the process exited or ``timeout`` passed; names the log.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise EdgeloopError(f"{what} did not start; see {log}")
        time.sleep(0.1)


PROCESS_LOG = "processes.jsonl"


def spawn_logged(
    cmd: list[str], log: Path, mode: str = "wb", **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with stdout and stderr going to ``log``.

    The child keeps its own descriptor; ours is closed as soon as it started,
    so no file object is left for the garbage collector to close (and warn).
    """
    with log.open(mode) as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if gone.

    PID plus start time names one process for good: a PID reused later by an
    unrelated process has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after ")" are plain
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; only its exit status remains
        return None
    return int(fields[19])


def _record(home: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    """Append the started process to the demo's process log."""
    entry = {"pid": proc.pid, "start": start_time(proc.pid), "what": what}
    with (home / PROCESS_LOG).open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def still_running(home: Path) -> list[str]:
    """The processes recorded in ``home``'s process log that are still alive."""
    path = home / PROCESS_LOG
    if not path.exists():
        return []
    alive = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["start"] is not None and start_time(entry["pid"]) == entry["start"]:
            alive.append(f"{entry['what']} (pid {entry['pid']})")
    return alive


@dataclass(frozen=True)
class AgentSpec:
    """One simulated gateway."""

    node: str
    site: str
    token: str
    intake_url: str
    window_readings: int
    mqtt_port: int | None = None


def mosquitto_binary() -> str | None:
    """The broker binary if this machine has one."""
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        found = "/usr/sbin/mosquitto"
    return found


@contextmanager
def mosquitto(root: Path, home: Path) -> Iterator[int | None]:
    """A broker on 127.0.0.1 (its port), or None when mosquitto is not installed.

    Its PID goes in ``home``'s process log.
    """
    binary = mosquitto_binary()
    if binary is None:
        yield None
        return
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = root / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
    )
    proc = spawn_logged([binary, "-c", str(conf)], root / "mosquitto.log")
    _record(home, proc, "mosquitto")
    try:
        import socket

        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise EdgeloopError(
                        f"mosquitto did not start; see {root / 'mosquitto.log'}"
                    ) from None
                time.sleep(0.05)
        yield port
    finally:
        _stop(proc)


@contextmanager
def agent(home: Path, spec: AgentSpec) -> Iterator[str]:
    """A running agent; yields its base URL."""
    port = free_port()
    state = home / "agents" / spec.node
    state.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "EDGELOOP_AGENT_NODE__ID": spec.node,
        "EDGELOOP_AGENT_NODE__SITE": spec.site,
        "EDGELOOP_AGENT_NODE__COHORT": spec.site,
        "EDGELOOP_AGENT_MODEL__DESIRED_MODEL_PATH": str(
            home / "edge" / spec.node / "desired-model.json"
        ),
        "EDGELOOP_AGENT_MODEL__CACHE_DIR": str(state / "models"),
        "EDGELOOP_AGENT_MODEL__POLL_INTERVAL_S": "0.2",
        "EDGELOOP_AGENT_DRIFT__WINDOW_READINGS": str(spec.window_readings),
        "EDGELOOP_AGENT_DRIFT__WINDOW_SECONDS": "1000000",
        "EDGELOOP_AGENT_DRIFT__SAMPLE_SIZE": "40",
        "EDGELOOP_AGENT_OUTBOX__PATH": str(state / "outbox.sqlite"),
        "EDGELOOP_AGENT_OUTBOX__INTAKE_URL": spec.intake_url,
        "EDGELOOP_AGENT_OUTBOX__TOKEN": spec.token,
        "EDGELOOP_AGENT_OUTBOX__UPLOAD_READINGS": "true",
        "EDGELOOP_AGENT_OUTBOX__RETRY_DELAYS_S": "[0.2, 0.5, 1.0]",
        "EDGELOOP_AGENT_OUTBOX__FLUSH_INTERVAL_S": "0.2",
        "EDGELOOP_AGENT_OUTBOX__HEARTBEAT_INTERVAL_S": "0.5",
        "EDGELOOP_AGENT_OUTBOX__REQUEST_TIMEOUT_S": "5",
        "EDGELOOP_AGENT_SCORING__MAX_BATCH_ROWS": "2000",
        "EDGELOOP_AGENT_SCORING__MAX_BODY_BYTES": str(8 * 2**20),
    }
    if spec.mqtt_port is not None:
        env |= {
            "EDGELOOP_AGENT_MQTT__ENABLED": "true",
            "EDGELOOP_AGENT_MQTT__PORT": str(spec.mqtt_port),
            # one gateway per topic branch: two gateways of a site share no readings
            "EDGELOOP_AGENT_MQTT__READINGS_TOPIC": f"edgeloop/{spec.node}/+/readings",
        }
    binary = Path(sys.executable).with_name("edgeloop-agent")
    log = state / "agent.log"
    proc = spawn_logged(
        [str(binary), "serve", "--port", str(port), "--log-level", "warning"],
        log,
        env=env,
    )
    _record(home, proc, f"agent {spec.node}")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/v2/health/live", proc, f"agent {spec.node}", log)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
