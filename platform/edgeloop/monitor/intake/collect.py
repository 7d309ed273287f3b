"""Continuous collection: what the fleet sends, kept as Parquet partitions for retraining.

Layout under the collection root (a local directory by default)::

    readings/model=<name>/site=<site>/day=<YYYY-MM-DD>/<report-key>.parquet
    samples/model=<name>/site=<site>/day=<YYYY-MM-DD>/<report-key>.parquet

One file per accepted report, named by the report's idempotency key and
written atomically (temporary file + rename) *before* the report is committed:
a redelivered report rewrites the same bytes to the same name, so nothing is
duplicated, and a crash between the two leaves a file that the redelivery
overwrites. A partition's hash is the sha256 over its files' names and
digests in name order; the training data assembled from partitions records
every hash, so lineage leads from a model back to the exact reports.

The root is a local directory or an object-store URI (``s3://BUCKET/PREFIX``,
any S3 API through ``AWS_ENDPOINT_URL``), read and written through fsspec
with the same layout. An object PUT is atomic (a reader sees the whole object
or none), which is what the temporary file + rename gives on a disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from edgeloop_agent.contracts import ReadingsBatch, Report, RowSample, file_sha256
from edgeloop_components import uris

Root = Path | str
"""A collection root: a local directory or an object-store URI."""


def is_remote(root: Root) -> bool:
    """True for an object-store root (``s3://...``)."""
    return uris.is_remote(str(root))


def join(root: Root, *parts: str) -> Root:
    """``root/part/...`` for a directory or a URI."""
    if is_remote(root):
        return "/".join([str(root).rstrip("/"), *parts])
    return Path(root).joinpath(*parts)


def open_file(location: Root, mode: str = "rb") -> IO[Any]:
    """Open a local file or a remote object (binary modes)."""
    if is_remote(location):
        fs, path = uris.filesystem(str(location))
        return fs.open(path, mode)  # type: ignore[no-any-return]
    return Path(location).open(mode)


def exists(location: Root) -> bool:
    """Whether a local path or a remote object/prefix exists."""
    if is_remote(location):
        fs, path = uris.filesystem(str(location))
        return bool(fs.exists(path))
    return Path(location).exists()


@dataclass(frozen=True)
class Partition:
    """One (kind, model, site, day) directory of collected files."""

    kind: str
    model: str
    site: str
    day: str
    path: Root
    files: tuple[str, ...]
    sha256: str
    stale: tuple[str, ...] = ()
    """Files a compacted file beside them already holds (a compaction cut short):
    left out of ``files`` and the hash; the next compaction pass deletes them."""

    def file(self, name: str) -> Root:
        """One of the partition's files, as a path or URI."""
        return join(self.path, name)


def _safe(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in value) or "_"


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(path)


def readings_frame(report: Report) -> pd.DataFrame:
    """A readings report as a table (one row per reading)."""
    body = report.body
    assert isinstance(body, ReadingsBatch)
    frame = pd.DataFrame(list(body.rows), columns=list(body.columns), dtype="float64")
    frame.insert(0, "timestamp", pd.to_datetime(list(body.timestamps), utc=True))
    frame.insert(1, "site_id", body.site)
    frame.insert(2, "pump_id", list(body.entities))
    frame["node"] = report.node
    frame["model_version"] = body.model_version
    frame["score"] = list(body.scores)
    frame["alarm"] = list(body.alarms)
    return frame


def samples_frame(report: Report) -> pd.DataFrame:
    """A row-sample report as a table (model inputs, score, entity)."""
    body = report.body
    assert isinstance(body, RowSample)
    frame = pd.DataFrame(list(body.rows), columns=list(body.columns), dtype="float64")
    frame.insert(0, "window_end", pd.Timestamp(body.window_end).tz_convert("UTC"))
    frame.insert(1, "site_id", body.site)
    frame.insert(2, "pump_id", list(body.entities) or [""] * len(frame))
    frame["node"] = report.node
    frame["model_version"] = body.model_version
    # float64 always: a monitor-only bundle's rows have no score (None -> NaN)
    frame["score"] = pd.Series(list(body.scores), dtype="float64")
    return frame


def write_report(root: Root, report: Report) -> list[Root]:
    """Write a readings or sample report into its day partitions; other kinds: nothing."""
    body = report.body
    if isinstance(body, ReadingsBatch):
        kind, frame, time_col = "readings", readings_frame(report), "timestamp"
    elif isinstance(body, RowSample):
        kind, frame, time_col = "samples", samples_frame(report), "window_end"
    else:
        return []
    if frame.empty:
        return []
    written: list[Root] = []
    days = frame[time_col].dt.strftime("%Y-%m-%d")
    for day, part in frame.groupby(days, sort=True):
        path = join(
            root,
            kind,
            f"model={_safe(body.model_name)}",
            f"site={_safe(body.site)}",
            f"day={day}",
            f"{_safe(report.key)}.parquet",
        )
        if is_remote(path):
            with open_file(path, "wb") as handle:  # one PUT: atomic
                part.reset_index(drop=True).to_parquet(handle, index=False)
        else:
            _write_atomic(part.reset_index(drop=True), Path(path))
        written.append(path)
    return written


_HIVE_KEYS = ("model", "site", "day")


def partitions(
    root: Root,
    kind: str,
    model: str,
    since_day: str = "",
    until_day: str = "",
    hashes: bool = True,
) -> list[Partition]:
    """Partitions of one kind and model, optionally limited to a day range (inclusive).

    ``hashes=False`` skips reading every file for the partition hash (``sha256``
    is then empty): listing for housekeeping, not for lineage.

    Discovery is pyarrow's hive partitioning (``model=/site=/day=``, all keys
    read as strings; hidden ``.tmp`` files ignored), filtered by model and days.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    fs: Any = None
    if is_remote(root):
        fs, base = uris.filesystem(str(join(root, kind)))
        if not fs.exists(base):
            return []
    else:
        base = str(Path(root) / kind)
        if not Path(base).is_dir():
            return []
    scheme = ds.partitioning(
        pa.schema([(key, pa.string()) for key in _HIVE_KEYS]), flavor="hive"
    )
    dataset = ds.dataset(base, format="parquet", partitioning=scheme, filesystem=fs)
    wanted = _safe(model)
    grouped: dict[tuple[str, str], list[str]] = {}
    for fragment in dataset.get_fragments():
        keys = ds.get_partition_keys(fragment.partition_expression)
        day = str(keys.get("day", ""))
        if keys.get("model") != wanted or not day:
            continue
        if (since_day and day < since_day) or (until_day and day > until_day):
            continue
        site = str(keys.get("site", ""))
        grouped.setdefault((site, day), []).append(str(fragment.path))
    out = []
    for (site, day), paths in sorted(grouped.items()):
        names = sorted(p.rsplit("/", 1)[1] for p in paths)
        folder = paths[0].rsplit("/", 1)[0]
        where: Root = (
            str(join(root, kind, *folder[len(base) :].strip("/").split("/")))
            if fs is not None
            else Path(folder)
        )
        held = superseded(where, tuple(names))  # a compaction cut short: not twice
        names = [n for n in names if n not in held]
        digest = hashlib.sha256()
        for name in names if hashes else ():
            digest.update(f"{name}:{object_sha256(join(where, name))}\n".encode())
        out.append(
            Partition(
                kind=kind,
                model=model,
                site=site,
                day=day,
                path=where,
                files=tuple(names),
                sha256=digest.hexdigest() if hashes else "",
                stale=tuple(sorted(held)),
            )
        )
    return out


COMPACTED = "compacted-"
"""Prefix of a compacted partition file (``compaction.py``)."""
SIDECAR = "_compacted-"
"""Prefix of a compaction's sidecar; the underscore hides it from Parquet discovery."""


def sidecars(where: Root) -> list[dict[str, Any]]:
    """Every compaction sidecar in a partition directory (local or remote)."""
    if is_remote(where):
        fs, path = uris.filesystem(str(where))
        names = [p.rsplit("/", 1)[1] for p in fs.glob(f"{path}/{SIDECAR}*.json")]
    else:
        names = [p.name for p in Path(where).glob(f"{SIDECAR}*.json")]
    out = []
    for name in sorted(names):
        with open_file(join(where, name)) as handle:
            out.append(json.loads(handle.read()))
    return out


def superseded(where: Root, files: tuple[str, ...]) -> set[str]:
    """Files of a partition that a compacted file beside them already holds."""
    if len(files) < 2 or not any(name.startswith(COMPACTED) for name in files):
        return set()  # a compacted file alone (the usual case) needs no sidecar read
    present = set(files)
    return {
        member
        for sidecar in sidecars(where)
        if sidecar["file"] in present
        for member in sidecar["members"]
        if member in present
    }


def partition_hash(part: Partition) -> str:
    """A partition's hash (as :func:`partitions` computes it), for one listed without."""
    digest = hashlib.sha256()
    for name in part.files:
        digest.update(f"{name}:{object_sha256(part.file(name))}\n".encode())
    return digest.hexdigest()


def models(root: Root) -> list[str]:
    """The (file-safe) model names anything was collected for."""
    found: set[str] = set()
    for kind in ("readings", "samples"):
        if is_remote(root):
            fs, path = uris.filesystem(str(join(root, kind)))
            entries = [p.rsplit("/", 1)[1] for p in fs.glob(f"{path}/model=*")]
        else:
            entries = [p.name for p in Path(root, kind).glob("model=*")]
        found |= {e.removeprefix("model=") for e in entries}
    return sorted(found)


def object_sha256(location: Root) -> str:
    """Hex sha256 of a local file or a remote object, read in chunks."""
    if not is_remote(location):
        return file_sha256(Path(location))
    digest = hashlib.sha256()
    with open_file(location) as handle:
        while chunk := handle.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def row_count(parts: list[Partition]) -> int:
    """Rows in some partitions, from the Parquet footers (no data is read)."""
    import pyarrow.parquet as pq

    total = 0
    for p in parts:
        for name in p.files:
            with open_file(p.file(name)) as handle:
                total += int(pq.ParquetFile(handle).metadata.num_rows)
    return total


def load(parts: list[Partition]) -> pd.DataFrame:
    """All rows of some partitions in one table."""
    frames = []
    for p in parts:
        for name in p.files:
            with open_file(p.file(name)) as handle:
                frames.append(pd.read_parquet(handle))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
