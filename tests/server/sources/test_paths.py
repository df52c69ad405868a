"""Folder sources stay inside the configured roots, whatever the tree under them holds."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from server.sources.paths import (
    REFUSAL_REASONS,
    FolderFile,
    FolderRefusal,
    PathRefused,
    iter_folder_files,
    resolve_source_folder,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "shoots" / "2024" / "day1").mkdir(parents=True)
    (root / "shoots" / "2024" / "day1" / "b.jpg").write_bytes(b"bb")
    (root / "shoots" / "2024" / "day1" / "a.jpg").write_bytes(b"a")
    (root / "shoots" / "2024" / "top.png").write_bytes(b"top")
    (root / "shoots" / "2024" / "z").mkdir()
    (root / "shoots" / "2024" / "z" / "deep.webp").write_bytes(b"deep!")
    (root / "readme.txt").write_text("not a folder")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"secret")
    return outside


def refusal(requested: str, roots: list[Path]) -> str:
    with pytest.raises(PathRefused) as caught:
        resolve_source_folder(requested, roots)
    assert caught.value.detail
    return caught.value.reason


def listing(folder: Path, roots: list[Path]) -> list[tuple[str, str | int]]:
    """(relative path, size) for files and (relative path, reason) for refusals, in order."""
    entries: list[tuple[str, str | int]] = []
    for entry in iter_folder_files(folder, roots):
        if isinstance(entry, FolderFile):
            entries.append((entry.relative_path, entry.size))
        else:
            entries.append((entry.relative_path, entry.reason))
    return entries


# --- resolve_source_folder -----------------------------------------------------------------


def test_relative_path_resolves_inside_the_root(root: Path) -> None:
    assert resolve_source_folder("shoots/2024", [root]) == (root / "shoots" / "2024").resolve()


def test_relative_path_is_looked_up_in_each_root_in_order(root: Path, tmp_path: Path) -> None:
    second = tmp_path / "second"
    (second / "only-here").mkdir(parents=True)
    assert resolve_source_folder("only-here", [root, second]) == (second / "only-here").resolve()


@pytest.mark.parametrize(
    "requested",
    ["..", "../outside", "shoots/../../outside", "shoots/2024/..", "shoots\\..\\..\\outside"],
)
def test_parent_reference_is_refused_even_when_it_would_stay_inside(root: Path, requested: str) -> None:
    assert refusal(requested, [root]) == "parent_reference"


def test_absolute_path_with_parent_reference_is_refused(root: Path) -> None:
    assert refusal(f"{root}/shoots/../shoots", [root]) == "parent_reference"


def test_absolute_path_inside_a_root_is_accepted(root: Path) -> None:
    assert resolve_source_folder(str(root / "shoots"), [root]) == (root / "shoots").resolve()


def test_absolute_path_outside_every_root_is_refused(root: Path, outside: Path) -> None:
    assert refusal(str(outside), [root]) == "outside_roots"
    assert refusal("/etc", [root]) == "outside_roots"


def test_refusal_outside_roots_does_not_reveal_whether_the_path_exists(root: Path) -> None:
    assert refusal("/no/such/place", [root]) == refusal("/etc", [root]) == "outside_roots"


def test_root_prefix_is_not_containment(root: Path, tmp_path: Path) -> None:
    sibling = tmp_path / "root-evil"
    sibling.mkdir()
    assert refusal(str(sibling), [root]) == "outside_roots"


@pytest.mark.parametrize("requested", ["C:\\data", "\\\\server\\share", "~/photos", "~root"])
def test_foreign_absolute_forms_are_refused(root: Path, requested: str) -> None:
    assert refusal(requested, [root]) == "absolute_path_refused"


def test_symlinked_folder_pointing_outside_is_refused(root: Path, outside: Path) -> None:
    (root / "escape").symlink_to(outside, target_is_directory=True)
    assert refusal("escape", [root]) == "symlink_escape"
    assert refusal(str(root / "escape"), [root]) == "symlink_escape"


def test_path_through_a_symlink_outside_is_refused_without_probing_existence(
    root: Path, outside: Path
) -> None:
    (root / "escape").symlink_to(outside, target_is_directory=True)
    assert refusal("escape/exists-outside", [root]) == "symlink_escape"
    (outside / "exists-outside").mkdir()
    assert refusal("escape/exists-outside", [root]) == "symlink_escape"


def test_symlink_into_a_root_is_accepted_at_its_real_path(root: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(root / "shoots", target_is_directory=True)
    assert resolve_source_folder(str(alias), [root]) == (root / "shoots").resolve()


def test_root_given_through_a_symlink_still_confines(tmp_path: Path, root: Path) -> None:
    linked_root = tmp_path / "linked-root"
    linked_root.symlink_to(root, target_is_directory=True)
    assert resolve_source_folder("shoots", [linked_root]) == (root / "shoots").resolve()
    assert refusal("/etc", [linked_root]) == "outside_roots"


def test_missing_folder_is_not_found(root: Path) -> None:
    assert refusal("shoots/1999", [root]) == "not_found"
    assert refusal(str(root / "nope"), [root]) == "not_found"


def test_file_is_not_a_directory(root: Path) -> None:
    assert refusal("readme.txt", [root]) == "not_a_directory"


@pytest.mark.parametrize("requested", ["", "shoots\x00/etc"])
def test_empty_or_nul_path_is_invalid(root: Path, requested: str) -> None:
    assert refusal(requested, [root]) == "invalid_path"


def test_no_configured_roots_refuses_everything(root: Path) -> None:
    assert refusal("shoots", []) == "outside_roots"


# --- iter_folder_files ---------------------------------------------------------------------


def test_nested_files_are_listed_depth_first_in_sorted_order(root: Path) -> None:
    assert listing(root / "shoots", [root]) == [
        ("2024/day1/a.jpg", 1),
        ("2024/day1/b.jpg", 2),
        ("2024/top.png", 3),
        ("2024/z/deep.webp", 5),
    ]


def test_listed_files_carry_their_resolved_absolute_path(root: Path) -> None:
    entries = list(iter_folder_files(root / "shoots" / "2024" / "z", [root]))
    assert entries == [FolderFile("deep.webp", (root / "shoots" / "2024" / "z" / "deep.webp").resolve(), 5)]
    assert isinstance(entries[0], FolderFile) and entries[0].path.is_absolute()


def test_hidden_files_and_directories_are_skipped(root: Path) -> None:
    (root / ".cache").mkdir()
    (root / ".cache" / "x.jpg").write_bytes(b"x")
    (root / "shoots" / ".DS_Store").write_bytes(b"junk")
    assert [path for path, _ in listing(root / "shoots", [root])] == [
        "2024/day1/a.jpg",
        "2024/day1/b.jpg",
        "2024/top.png",
        "2024/z/deep.webp",
    ]
    assert ".cache/x.jpg" not in [path for path, _ in listing(root, [root])]


def test_symlinked_file_pointing_outside_is_refused(root: Path, outside: Path) -> None:
    (root / "shoots" / "leak.jpg").symlink_to(outside / "secret.jpg")
    assert ("leak.jpg", "symlink_escape") in listing(root / "shoots", [root])
    assert all(
        not (isinstance(entry, FolderFile) and entry.path.is_relative_to(outside))
        for entry in iter_folder_files(root / "shoots", [root])
    )


def test_symlinked_directory_pointing_outside_is_not_followed(root: Path, outside: Path) -> None:
    (root / "shoots" / "escape").symlink_to(outside, target_is_directory=True)
    entries = listing(root / "shoots", [root])
    assert ("escape", "symlink_escape") in entries
    assert not any(path.startswith("escape/") for path, _ in entries)


def test_symlink_inside_the_roots_is_followed(root: Path) -> None:
    (root / "shoots" / "favourite.jpg").symlink_to(root / "shoots" / "2024" / "top.png")
    entries = list(iter_folder_files(root / "shoots", [root]))
    assert FolderFile("favourite.jpg", (root / "shoots" / "2024" / "top.png").resolve(), 3) in entries


def test_symlink_loop_to_an_ancestor_ends(root: Path) -> None:
    (root / "shoots" / "2024" / "z" / "back").symlink_to(root / "shoots", target_is_directory=True)
    entries = _listing_within_seconds(root / "shoots", [root], seconds=10)
    assert ("2024/z/back", "symlink_loop") in entries
    assert len([path for path, _ in entries if path.endswith("deep.webp")]) == 1


def test_cycle_of_symlinks_ends(root: Path) -> None:
    (root / "shoots" / "ping").symlink_to(root / "shoots" / "pong")
    (root / "shoots" / "pong").symlink_to(root / "shoots" / "ping")
    entries = _listing_within_seconds(root / "shoots", [root], seconds=10)
    assert ("ping", "symlink_loop") in entries and ("pong", "symlink_loop") in entries


def test_broken_symlink_is_refused(root: Path) -> None:
    (root / "shoots" / "gone.jpg").symlink_to(root / "shoots" / "never-was.jpg")
    assert ("gone.jpg", "broken_symlink") in listing(root / "shoots", [root])


def test_fifo_and_socket_are_refused_without_being_opened(root: Path) -> None:
    os.mkfifo(root / "shoots" / "pipe.jpg")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(root / "shoots" / "sock.jpg"))
        entries = _listing_within_seconds(root / "shoots", [root], seconds=10)
    finally:
        server.close()
    assert ("pipe.jpg", "special_file") in entries
    assert ("sock.jpg", "special_file") in entries


def test_name_that_is_not_utf8_is_refused(root: Path) -> None:
    os.close(os.open(os.fsencode(root / "shoots") + b"/bad-\xff.jpg", os.O_CREAT | os.O_WRONLY))
    entries = listing(root / "shoots", [root])
    assert ("bad-\ufffd.jpg", "invalid_name") in entries
    assert all(isinstance(path, str) and path.encode() for path, _ in entries)


def test_every_refusal_reason_is_documented(root: Path, outside: Path) -> None:
    (root / "shoots" / "leak").symlink_to(outside, target_is_directory=True)
    (root / "shoots" / "gone").symlink_to(root / "nothing")
    os.mkfifo(root / "shoots" / "pipe")
    reasons = {
        entry.reason
        for entry in iter_folder_files(root / "shoots", [root])
        if isinstance(entry, FolderRefusal)
    }
    assert reasons and reasons <= REFUSAL_REASONS


def test_listing_a_folder_outside_the_roots_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(PathRefused) as caught:
        list(iter_folder_files(outside, [root]))
    assert caught.value.reason == "outside_roots"


def test_listing_a_file_is_refused(root: Path) -> None:
    with pytest.raises(PathRefused) as caught:
        list(iter_folder_files(root / "readme.txt", [root]))
    assert caught.value.reason == "not_a_directory"


def test_very_deep_tree_is_walked_without_recursion(root: Path) -> None:
    deep = root / "deep"
    levels = [deep]
    for _ in range(1_200):  # deeper than the interpreter's recursion limit
        levels.append(levels[-1] / "d")
    try:
        for level in levels:
            level.mkdir()
        (levels[-1] / "bottom.jpg").write_bytes(b"!")
        entries = listing(deep, [root])
        assert len(entries) == 1 and entries[0][0].endswith("/d/bottom.jpg")
    finally:
        # pytest removes old temporary folders with a recursive rmtree that this depth
        # would break on Python 3.11, so the tree goes now, bottom up.
        (levels[-1] / "bottom.jpg").unlink(missing_ok=True)
        for level in reversed(levels):
            if level.exists():
                level.rmdir()


def _listing_within_seconds(folder: Path, roots: list[Path], seconds: float) -> list[tuple[str, str | int]]:
    result: list[list[tuple[str, str | int]]] = []
    worker = threading.Thread(target=lambda: result.append(listing(folder, roots)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the listing did not end"
    return result[0]
