"""Atomic folders: a reader sees the old folder or the new one, and a failure leaves the old."""

import os

import pytest

from indoorseg import files
from indoorseg.files import atomic_folder, atomic_write_text


def test_a_folder_is_replaced_whole_with_nothing_left_beside_it(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert not (target / "new.txt").exists()  # not visible before the end
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_error_while_filling_leaves_the_old_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # moving the new folder in
            raise OSError("interrupted")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(OSError, match="interrupted"), atomic_folder(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_is_never_replaced_by_a_folder(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    with pytest.raises(FileExistsError, match="is a file"), atomic_folder(precious):
        pass
    assert precious.read_text() == "keep me"


def test_folders_and_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_folder(tmp_path / "shared") as tmp:
            (tmp / "a.txt").write_text("a")
        atomic_write_text(tmp_path / "b.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
