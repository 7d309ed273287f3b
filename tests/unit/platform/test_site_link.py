"""The demo's site link copies desired-model records without racing itself."""

from __future__ import annotations

import threading

from edgeloop.demo.link import SiteLink, free_port


def test_concurrent_syncs_never_trip_over_each_other(tmp_path):
    """``up()`` syncs from the caller while the sync thread copies too (a CI failure).

    Several threads sync while the published record keeps changing; every copy
    must land whole and the node must end on the last record.
    """
    published, edge = tmp_path / "published", tmp_path / "edge"
    (published / "gw-1").mkdir(parents=True)
    source = published / "gw-1" / "desired-model.json"
    source.write_text('{"version": "0"}')
    link = SiteLink("site", free_port(), ["gw-1"], published, edge).start()
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(300):
                link.sync_once()
        except OSError as error:  # the race: a .tmp renamed away by the other copier
            errors.append(error)

    try:
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(1, 200):
            tmp = source.with_suffix(".new")
            tmp.write_text(f'{{"version": "{i}"}}')
            tmp.replace(source)
        for t in threads:
            t.join()
        link.sync_once()
    finally:
        link.close()
    assert errors == []
    assert (edge / "gw-1" / "desired-model.json").read_text() == '{"version": "199"}'
