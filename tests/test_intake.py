"""What the inbox scan lists: every regular file below it, with NFC names relative to it."""

from __future__ import annotations

import os
import unicodedata

import pytest

from pipeline.stages.intake import scan


def test_scan_lists_files_in_subfolders_and_skips_hidden_folders_and_links(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "Huyện đoàn" / "tháng 5").mkdir(parents=True)
    (inbox / ".git").mkdir()
    (inbox / "a.xlsx").write_bytes(b"1")
    (inbox / "Huyện đoàn" / "b.ods").write_bytes(b"22")
    (inbox / "Huyện đoàn" / "tháng 5" / "c.xls").write_bytes(b"333")
    (inbox / ".git" / "config.xlsx").write_bytes(b"x")
    nfd = unicodedata.normalize("NFD", "Dầu Tiếng.xlsx")
    (inbox / nfd).write_bytes(b"4444")
    outside = tmp_path / "outside.xlsx"
    outside.write_bytes(b"x")
    (inbox / "link.xlsx").symlink_to(outside)
    (inbox / "folder-link").symlink_to(inbox / "Huyện đoàn", target_is_directory=True)
    if hasattr(os, "mkfifo"):
        os.mkfifo(inbox / "pipe.xlsx")

    files = scan(inbox)

    assert [(f.name, f.size) for f in files] == [
        ("Dầu Tiếng.xlsx", 4), ("Huyện đoàn/b.ods", 2), ("Huyện đoàn/tháng 5/c.xls", 3), ("a.xlsx", 1)]
    assert files[0].path == inbox / nfd  # the path stays as the file system spells it
    assert all(not f.junk_reason for f in files)


@pytest.mark.parametrize(("name", "junk"), [
    ("bao cao.XLSX", False),
    # What a file holds decides, not its name: files without a known extension are read too.
    ("bao cao.", False),
    ("bao cao", False),
    ("bao cao.docx", False),
    ("Thumbs.db", True),
    ("~$bao cao.xlsx", True),
    (".bao cao.xlsx", True),
])
def test_scan_marks_junk_by_name(tmp_path, name, junk):
    (tmp_path / name).write_bytes(b"x")
    [entry] = scan(tmp_path)
    assert bool(entry.junk_reason) is junk
