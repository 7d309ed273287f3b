"""``make ui-check``: open the demo's MLflow and Evidently pages in headless Chromium.

Starts ``mlflow ui`` and ``evidently ui`` on the demo's home (the commands the
demo prints), loads the registered model's page and the Evidently project's
dashboard in Debian's Chromium, writes a screenshot of each and checks the
rendered page (the DOM after its scripts ran), not only the HTTP status: a
single-page app answers 200 even when it then shows an error or an empty
dashboard. Fails, with one line per problem, when a page shows an error, the
dashboard is empty or lacks a panel the project defines, or the model page
lacks a version or the champion alias.

Usage: python hack/ui_check.py [--home DIR] [--out DIR] [--model NAME]
(default home: $EDGELOOP_HOME/demo-loop, else .edgeloop/demo-loop; PNGs and
server logs in build/ui-check/, which git ignores).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # no calls home: this machine's network is closed, and tests stay local
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,2400",
    # virtual time runs the page's scripts and fetches before the DOM is taken
    "--virtual-time-budget=20000",
)
ERROR_MARKERS = (
    "Something went wrong",
    "This dashboard is currently empty",
    "RESOURCE_DOES_NOT_EXIST",
    "Page not found",
    "Internal Server Error",
    "Failed to fetch",
)


class CheckFailed(Exception):
    """A page is missing, wrong or empty; the message is the line to print."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (127.0.0.1)
        return bytes(answer.read())


def _serve(stack: ExitStack, name: str, argv: list[str], probe: str, log: Path) -> None:
    """Start a UI server and wait until ``probe`` answers (or say why not)."""
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    stack.callback(stop)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise CheckFailed(f"{name} exited ({proc.returncode}): {' '.join(tail)}")
        try:
            _get(probe)
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise CheckFailed(f"{name} did not answer {probe} within 180 s (log: {log})")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise CheckFailed(
            "no chromium on PATH (Debian: apt-get install chromium; make system-deps)"
        )
    return found


def _render(url: str, png: Path) -> str:
    """The page's visible text after its scripts ran; a screenshot beside it."""
    browser = _chromium()
    with tempfile.TemporaryDirectory() as profile:
        base = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run(  # noqa: S603
            [*base, "--dump-dom", url], capture_output=True, timeout=180, check=False
        )
    with tempfile.TemporaryDirectory() as profile:
        base = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        subprocess.run(  # noqa: S603
            [*base, f"--screenshot={png}", url],
            capture_output=True,
            timeout=180,
            check=False,
        )
    if dom.returncode != 0 or not dom.stdout:
        raise CheckFailed(f"chromium could not render {url} (exit {dom.returncode})")
    if not png.is_file() or png.stat().st_size < 10_000:
        raise CheckFailed(f"chromium wrote no usable screenshot of {url}")
    page = dom.stdout.decode(errors="replace")
    text = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text)).replace("\xa0", " ")
    return re.sub(r"\s+", " ", text)


def _errors(name: str, text: str) -> list[str]:
    return [f"{name}: the page shows {m!r}" for m in ERROR_MARKERS if m in text]


def check_mlflow(home: Path, out: Path, model: str, stack: ExitStack) -> list[str]:
    """The registered model's page lists every version and the champion alias."""
    db = home / "mlflow.db"
    if not db.is_file():
        raise CheckFailed(f"{db}: no MLflow registry here (run `make demo` first)")
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    _serve(
        stack,
        "mlflow ui",
        [str(mlflow), "ui", "--backend-store-uri", f"sqlite:///{db}"]
        + ["--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/health",
        out / "mlflow-ui.log",
    )
    base = f"http://127.0.0.1:{port}"
    search = urllib.parse.quote(f"name='{model}'")
    found = _get(f"{base}/ajax-api/2.0/mlflow/model-versions/search?filter={search}")
    versions = json.loads(found).get("model_versions", [])
    if not versions:
        raise CheckFailed(f"MLflow has no versions of {model!r} under {home}")
    text = _render(f"{base}/#/models/{model}", out / "mlflow-model.png")
    problems = _errors("MLflow model page", text)
    for version in versions:
        if f"Version {version['version']}" not in text:
            problems.append(f"MLflow model page: no 'Version {version['version']}'")
    if "@ champion" not in text:
        problems.append("MLflow model page: no champion alias shown")
    return problems


def check_evidently(home: Path, out: Path, model: str, stack: ExitStack) -> list[str]:
    """The project's dashboard shows every panel the project defines, none empty."""
    workspace = home / "evidently"
    if not workspace.is_dir():
        raise CheckFailed(
            f"{workspace}: no Evidently workspace (run `make demo` first)"
        )
    port = _free_port()
    evidently = Path(sys.executable).with_name("evidently")
    _serve(
        stack,
        "evidently ui",
        [str(evidently), "ui", "--workspace", str(workspace)]
        + ["--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/api/version",
        out / "evidently-ui.log",
    )
    base = f"http://127.0.0.1:{port}"
    projects = [
        p for p in json.loads(_get(f"{base}/api/projects")) if p["name"] == model
    ]
    if not projects:
        raise CheckFailed(f"Evidently has no project {model!r} in {workspace}")
    project = projects[0]["id"]
    board = json.loads(_get(f"{base}/api/v2/dashboards/{project}"))
    titles = [panel["title"] for panel in board.get("panels", [])]
    text = _render(f"{base}/projects/{project}", out / "evidently-dashboard.png")
    problems = _errors("Evidently dashboard", text)
    if not titles:
        problems.append(f"Evidently project {model!r} has no dashboard panels")
    problems += [
        f"Evidently dashboard: panel {t!r} not shown" for t in titles if t not in text
    ]
    plots = sum(
        panel["plot_params"].get("plot_type") != "counter" for panel in board["panels"]
    )
    drawn = text.count("Timestamps")  # every plotted panel labels its time axis
    if drawn < plots:
        problems.append(
            f"Evidently dashboard: {plots - drawn} of {plots} plots drew no axis"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check both pages; one line per problem on stderr, exit 1 if any."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    default_home = Path(os.environ.get("EDGELOOP_HOME", ".edgeloop")) / "demo-loop"
    parser.add_argument("--home", type=Path, default=default_home)
    parser.add_argument("--out", type=Path, default=Path("build/ui-check"))
    parser.add_argument("--model", default="pump-failure")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    home = args.home.resolve()
    problems: list[str] = []
    try:
        with ExitStack() as stack:
            problems += check_mlflow(home, args.out, args.model, stack)
            problems += check_evidently(home, args.out, args.model, stack)
    except (CheckFailed, subprocess.TimeoutExpired) as exc:
        problems.append(str(exc))
    for line in problems:
        print(f"ui-check: {line}", file=sys.stderr)
    if problems:
        return 1
    for png in ("mlflow-model.png", "evidently-dashboard.png"):
        print(f"ui-check: ok {args.out / png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
