"""A reader worker's ``SegmentStore`` (``clean=False``) changes nothing on disk and reads
no replica hints: replaced segments are skipped, not deleted, and ``LIVE_VERSIONS`` files
are read by the folder's owner only (``recovery.py`` uses them for the sole writer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from server.storage.segment_store import LIVE_VERSIONS, SegmentManifest, SegmentStore


def _folder_with_a_replaced_segment(root: Path) -> SegmentStore:
    store = SegmentStore(root)
    store.write(SegmentManifest(1, ["1", "2"], {}), {})
    store.write(SegmentManifest(2, ["1", "2", "3"], {}, replaces=[1]), {})
    hints = np.array([7, -1, 9], dtype="<i8").tobytes()
    (root / "00000002" / LIVE_VERSIONS).write_bytes(hints)
    return store


def test_a_reader_skips_replaced_segments_without_deleting_them(tmp_path: Path) -> None:
    root = tmp_path / "segments"
    _folder_with_a_replaced_segment(root)
    folders = sorted(p.name for p in root.iterdir())
    reader = SegmentStore(root, clean=False).load_all()
    assert [s.manifest.segment_id for s in reader] == [2]
    assert sorted(p.name for p in root.iterdir()) == folders  # nothing removed
    owner = SegmentStore(root).load_all()
    assert [s.manifest.segment_id for s in owner] == [2]
    assert "00000001" in folders and "00000001" not in {p.name for p in root.iterdir()}


def test_only_the_owner_reads_the_live_versions_hints(tmp_path: Path) -> None:
    root = tmp_path / "segments"
    _folder_with_a_replaced_segment(root)
    (read,) = SegmentStore(root, clean=False).load_all()
    assert read.live_versions is None
    (owned,) = SegmentStore(root).load_all()
    assert owned.live_versions is not None
    assert np.frombuffer(owned.live_versions, dtype="<i8").tolist() == [7, -1, 9]
