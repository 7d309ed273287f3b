"""Hold-out split by entity *and* time, so no pump or period leaks across.

Training rows are the training pumps before the cut-off; holdout rows are the
other pumps after it. Rows of training pumps after the cut-off and of holdout
pumps before it are used by neither, which is the price of an honest holdout.

Retraining after drift (``holdout_from``): the fresh data is the newest, so a
time cut-off would put all of it in the holdout and the new model could not
learn from it. With ``holdout_from`` the cut-off is that time, and training
pumps contribute *all* their rows, fresh ones included; holdout pumps are
still never trained on, and both models are compared on the holdout pumps'
rows from ``holdout_from`` on, which neither has seen.

One entity (one machine's history): there is nothing to split by entity, so
the split is by time only. Training rows end a *purge gap* before the cut-off
(the label horizon: a training row's label looks that far ahead, into the
holdout period), holdout rows start at it; the assumption stated is that the
machine's future resembles its past, which an entity split would have tested.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from edgeloop_components.errors import TrainingError
from edgeloop_components.validation import LABEL_COLUMN

SPLIT_COLUMN = "__split__"


def holdout_entities(
    entities: list[str], fraction: float, seed: int, positive: set[str] | None = None
) -> set[str]:
    """A stable, seeded choice of holdout entities (at least one on each side).

    Stratified: entities in ``positive`` (those that fail during the holdout
    period) are drawn in proportion on their own, so a small fleet still gets
    failures on both sides of the split.
    """
    unique = sorted(set(entities))
    if len(unique) < 2:
        raise TrainingError(
            f"need at least 2 entities to split by entity, found {len(unique)}"
        )
    count = min(len(unique) - 1, max(1, math.ceil(fraction * len(unique))))
    positive = positive or set()

    def ranked(group: list[str]) -> list[str]:
        return sorted(
            group, key=lambda e: hashlib.sha256(f"{seed}:{e}".encode()).hexdigest()
        )

    pos = ranked([e for e in unique if e in positive])
    neg = ranked([e for e in unique if e not in positive])
    take_pos = min(len(pos), count, max(1 if pos else 0, round(fraction * len(pos))))
    chosen = pos[:take_pos] + neg[: count - take_pos]
    chosen += pos[take_pos:][: count - len(chosen)]
    return set(chosen)


def split(
    table: pd.DataFrame,
    entity_column: str,
    time_column: str,
    holdout_entity_fraction: float = 0.3,
    holdout_time_fraction: float = 0.4,
    seed: int = 0,
    holdout_from: str = "",
    purge: pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Label each row ``train``, ``holdout`` or ``unused`` in ``__split__``.

    ``holdout_from`` (ISO time): retraining mode, see the module docstring.
    ``purge``: the gap before the cut-off left out of training when there is
    only one entity (the label horizon).

    Raises:
        TrainingError: either side is empty or lacks a class.
    """
    if not 0 < holdout_entity_fraction < 1 or not 0 < holdout_time_fraction < 1:
        raise TrainingError("holdout fractions must be strictly between 0 and 1")
    times = table[time_column]
    cutoff: object = times.quantile(1 - holdout_time_fraction)
    if holdout_from:
        try:
            start = pd.Timestamp(holdout_from)
        except ValueError as exc:
            raise TrainingError(f"holdout_from {holdout_from!r} is not a time") from exc
        if start.tzinfo is not None and getattr(times.dt, "tz", None) is None:
            start = start.tz_convert("UTC").tz_localize(None)
        cutoff = start
    entity = table[entity_column].astype(str)
    late = times >= cutoff
    labelled = LABEL_COLUMN in table
    out = table.copy()
    if entity.nunique() < 2:  # one machine: by time only, with a purge gap
        gap = purge if purge is not None else pd.Timedelta(0)
        trained = times < pd.Timestamp(cutoff) - gap  # type: ignore[arg-type]
        out[SPLIT_COLUMN] = np.where(
            trained, "train", np.where(late, "holdout", "unused")
        )
    else:
        late_failures = (
            set(entity[late & (table[LABEL_COLUMN] == 1)]) if labelled else set()
        )
        held = holdout_entities(
            entity.tolist(), holdout_entity_fraction, seed, late_failures
        )
        is_held = entity.isin(held)
        trained = ~is_held if holdout_from else ~is_held & ~late
        out[SPLIT_COLUMN] = np.where(
            trained, "train", np.where(is_held & late, "holdout", "unused")
        )
    for side in ("train", "holdout"):
        if not labelled:  # an anomaly model needs rows on each side, not classes
            if not (out[SPLIT_COLUMN] == side).any():
                raise TrainingError(
                    f"{side} split is empty; lower the holdout fractions or add data"
                )
            continue
        labels = out.loc[out[SPLIT_COLUMN] == side, LABEL_COLUMN]
        if labels.nunique() < 2:
            raise TrainingError(
                f"{side} split has {len(labels)} rows and {labels.nunique()} label class(es); "
                "simulate more days or pumps, or lower the holdout fractions"
            )
    return out
