"""Delivers the outbox to the intake: batches, bearer token, backoff from settings.

``POST {intake_url}/v1/reports`` with a :class:`~edgeloop_agent.contracts.ReportBatch`.
2xx acknowledges the whole batch (the intake answers duplicates with 200 too).
401/403/408/429/503 and network errors keep the reports and back off (the
link or the intake is down: nothing is wrong with the reports), never sooner
than the intake's ``Retry-After``. One bad report
must not block the queue behind it, so:

* 413 halves the batch; a single report refused as too large goes to the
  dead letters, and the outbox splits later readings at half its size;
* any other 4xx retries one report at a time, then dead-letters the single
  offending report;
* ``poison_after`` HTTP 500s in a row for the same oldest report bisect the
  batch, then dead-letter the single report.

Dead letters stay on the node (``Outbox.dead_letters``) and are counted in the
heartbeat and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

import httpx

from edgeloop_agent.backoff import Backoff
from edgeloop_agent.outbox.store import Outbox
from edgeloop_agent.settings import OutboxSettings

log = logging.getLogger(__name__)

_KEEP = {401, 403, 408, 429}


class Forwarder:
    """An async loop that empties the outbox whenever the intake answers."""

    def __init__(
        self,
        outbox: Outbox,
        settings: OutboxSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        node: str = "",
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self.node = node
        self._transport = transport
        self._wake = asyncio.Event()
        self._batch = settings.batch_size
        self._failures = 0
        self._backoff = Backoff(settings.retry_delays_s, settings.retry_jitter)
        self._retry_in = 0.0
        self._errors_at: tuple[int, int] = (0, 0)  # (oldest report id, 500s in a row)
        self.delivered = 0
        self.last_error = ""

    def wake(self) -> None:
        """Ask for a delivery attempt now (e.g. after a new report)."""
        self._wake.set()

    def _delay(self) -> float:
        """The wait before the next attempt: the backoff drawn at the last failure."""
        return self._retry_in if self._failures else self.settings.flush_interval_s

    def token(self) -> str:
        """The bearer token: ``outbox.token``, else the file ``outbox.token_file`` names.

        The file is read on every delivery attempt, so a token Secret mounted
        (or rotated) after the agent started is picked up without a restart.
        ``{node}`` in the path is this node's id (one Secret key per node).
        """
        if self.settings.token:
            return self.settings.token
        if not self.settings.token_file:
            return ""
        path = Path(self.settings.token_file.replace("{node}", self.node))
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.request_timeout_s, transport=self._transport
        )

    async def drain(self) -> None:
        """Deliver what is queued until empty or a delivery fails (shutdown path).

        Callers bound it with a timeout; whatever is left stays in the outbox
        for the next start.
        """
        if not self.settings.intake_url:
            return
        async with self._client() as client:
            while self.outbox.depth() and await self.flush_once(client):
                pass

    async def run(self) -> None:
        """Deliver until cancelled."""
        async with self._client() as client:
            while True:
                progressed = (
                    await self.flush_once(client) if self.settings.intake_url else False
                )
                if progressed and self.outbox.depth():
                    continue
                self._wake.clear()
                if self._failures:
                    # backing off: new reports do not cut the wait short, or
                    # every heartbeat would retry against an intake that is down
                    await asyncio.sleep(self._delay())
                    continue
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow
                # a cancellation that races with the event firing, and the loop
                # would then never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._delay()):
                        await self._wake.wait()

    async def flush_once(self, client: httpx.AsyncClient) -> bool:
        """Try one batch; True if something left the queue."""
        batch = await asyncio.to_thread(self.outbox.peek, self._batch)
        if not batch:
            return False
        batch = _within(batch, 2 * self.outbox.max_report_bytes)
        body = '{"reports":[' + ",".join(text for _, text in batch) + "]}"
        url = self.settings.intake_url.rstrip("/") + "/v1/reports"
        try:
            headers = {"Content-Type": "application/json"}
            if token := self.token():
                headers["Authorization"] = f"Bearer {token}"
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return self._failed(f"{exc.__class__.__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            for report_id, reason in _refused(batch, response):
                await self._dead_letter(report_id, reason)
            await asyncio.to_thread(self.outbox.ack, [i for i, _ in batch])
            self.delivered += len(batch)
            self._failures, self._batch, self.last_error = (
                0,
                self.settings.batch_size,
                "",
            )
            return True
        if status == 413:
            if len(batch) > 1:
                self._batch = max(1, len(batch) // 2)
                return False
            limit = await asyncio.to_thread(self.outbox.learn_limit, len(body))
            return await self._dead_letter(
                batch[0][0],
                f"HTTP 413 (too large: {len(body)} bytes; split at {limit} from now)",
            )
        if 400 <= status < 500 and status not in _KEEP:
            if len(batch) > 1:
                self._batch = 1
                return False
            return await self._dead_letter(
                batch[0][0], f"HTTP {status}: {response.text[:300]}"
            )
        if status == 500:
            head, count = self._errors_at
            count = count + 1 if head == batch[0][0] else 1
            self._errors_at = (batch[0][0], count)
            if count >= self.settings.poison_after:
                self._errors_at = (0, 0)
                if len(batch) > 1:
                    self._batch = max(1, len(batch) // 2)
                    return False
                return await self._dead_letter(
                    batch[0][0], f"HTTP 500 {count} times: {response.text[:300]}"
                )
        return self._failed(
            f"HTTP {status}: {response.text[:200]}", _retry_after(response)
        )

    async def _dead_letter(self, report_id: int, reason: str) -> bool:
        log.error("report %s moved to the dead letters: %s", report_id, reason)
        await asyncio.to_thread(self.outbox.dead_letter, report_id, reason)
        return True

    def _failed(self, reason: str, at_least: float = 0.0) -> bool:
        """Back off; never sooner than the intake's ``Retry-After`` (``at_least``)."""
        self._failures += 1
        self._retry_in = max(self._backoff.delay(self._failures), at_least)
        self.last_error = reason
        log.warning(
            "report delivery failed (%s); retrying in %.1fs", reason, self._delay()
        )
        return False


def _refused(
    batch: list[tuple[int, str]], response: httpx.Response
) -> list[tuple[int, str]]:
    """Reports of an accepted batch the intake could not store.

    The intake names them in ``rejected``; they go to the dead letters instead
    of being acknowledged away.
    """
    try:
        rejected = response.json().get("rejected") or []
    except (ValueError, AttributeError):
        return []
    out = []
    for item in rejected:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            continue
        needle = f'"key":{json.dumps(item["key"])}'
        for report_id, text in batch:
            if needle in text:
                out.append(
                    (report_id, f"intake could not store it: {item.get('error', '')}")
                )
    return out


def _retry_after(response: httpx.Response) -> float:
    """Seconds from a ``Retry-After`` header (429, 503), capped at an hour; else 0."""
    value = response.headers.get("retry-after", "")
    try:
        return min(3600.0, max(0.0, float(value)))
    except ValueError:
        return 0.0  # an HTTP date or garbage: the backoff decides


def _within(batch: list[tuple[int, str]], budget: int) -> list[tuple[int, str]]:
    """The oldest reports whose JSON fits ``budget`` bytes (at least one).

    A POST larger than the intake takes is cut off before the intake can even
    answer 413 (it stops reading), which looks like a network error: so a batch
    never exceeds twice the report size limit, itself well under the intake's.
    """
    out: list[tuple[int, str]] = []
    size = 0
    for item in batch:
        size += len(item[1]) + 1
        if out and size > budget:
            break
        out.append(item)
    return out
