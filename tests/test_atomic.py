"""``rlrep.atomic.atomic_write``: the old file or the new one, never a partial write."""

import pytest

from rlrep.atomic import atomic_write


def test_a_completed_write_replaces_the_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    with atomic_write(path) as f:
        f.write("new")
        assert path.read_text() == "old"  # nothing visible before the rename
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(path, "wb") as f:
        f.write(b"partial")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_only_write_modes_are_accepted(tmp_path):
    with (
        pytest.raises(ValueError, match="mode must be 'w' or 'wb'"),
        atomic_write(tmp_path / "x", "a"),
    ):
        pytest.fail("atomic_write opened a file in append mode")
