"""Folder sources confined to the configured roots.

A folder source names a directory as a path relative to one of the roots (`shoots/2024`), or
as an absolute path that, once every symlink is resolved, lies inside one of them. Every `..`
component is refused outright, whatever it would resolve to: a request that needs one is
either a mistake or a probe. Roots are trusted configuration and are resolved themselves.

Exceptions:

    PathRefused     reason: parent_reference | absolute_path_refused | outside_roots |
                            symlink_escape | not_found | not_a_directory | invalid_path

Listing a folder never raises for one bad entry: it yields a FolderRefusal with a reason from
REFUSAL_REASONS and goes on. Callers still judge every file by its content (decode_image), and
should open the yielded path, not a re-joined name, so a swapped symlink is caught again there.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias

# A listing may yield one of these for an entry it does not list as a file.
REFUSAL_REASONS: Final = frozenset(
    {
        "symlink_escape",  # a symlink whose target lies outside every root
        "symlink_loop",  # a directory already walked (a loop, or a second link to it)
        "broken_symlink",  # a symlink whose target does not exist
        "special_file",  # FIFO, socket, device: never opened
        "unreadable",  # permission or I/O error while listing or stat-ing
        "invalid_name",  # a name that is not valid UTF-8
    }
)

_SEPARATORS: Final = re.compile(r"[/\\]")
# Forms that are absolute somewhere even though POSIX reads them as relative names.
_FOREIGN_ABSOLUTE: Final = re.compile(r"^(?:[A-Za-z]:|\\\\|~)")


class PathRefused(Exception):
    """A requested folder is not one this server may read. `reason` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FolderFile:
    relative_path: str  # from the listed folder, '/'-separated, as the user named it
    path: Path  # absolute and fully resolved: what to open
    size: int
    # With the size, what a watched source remembers in order to skip files it already read.
    mtime_ns: int = field(default=0, compare=False)


@dataclass(frozen=True)
class FolderRefusal:
    relative_path: str
    reason: str


FolderEntry: TypeAlias = FolderFile | FolderRefusal


def resolve_source_folder(requested: str, roots: Sequence[Path]) -> Path:
    """The resolved directory that `requested` names inside one of `roots`, or PathRefused.

    A relative path is tried against each root in order; the first root where it exists is
    used. Containment is checked before existence, so a refusal never reveals whether a path
    outside the roots exists.
    """
    if not requested or "\x00" in requested:
        raise PathRefused("invalid_path", "the path is empty or contains a NUL character")
    if ".." in _SEPARATORS.split(requested):
        raise PathRefused("parent_reference", "the path contains a '..' component")
    if _FOREIGN_ABSOLUTE.match(requested):
        raise PathRefused("absolute_path_refused", "drive, UNC and home-relative paths are not accepted")
    real_roots = _real_roots(roots)
    if not real_roots:
        raise PathRefused("outside_roots", "no source roots are configured")

    if os.path.isabs(requested):
        lexical = Path(os.path.normpath(requested))
        resolved = Path(os.path.realpath(lexical))
        if _within(resolved, real_roots) is None:
            lexically_inside = any(
                lexical.is_relative_to(root)
                for root in (*real_roots, *(Path(os.path.abspath(r)) for r in roots))
            )
            reason = "symlink_escape" if lexically_inside else "outside_roots"
            raise PathRefused(reason, f"{requested!r} is not inside a configured source root")
        return _require_directory(resolved, requested)

    for root in real_roots:
        # Resolve before testing existence, so nothing outside the roots is probed.
        resolved = Path(os.path.realpath(root / requested))
        if _within(resolved, real_roots) is None:
            raise PathRefused("symlink_escape", f"{requested!r} leads through a symlink out of the roots")
        if os.path.lexists(resolved):
            return _require_directory(resolved, requested)
    raise PathRefused("not_found", f"{requested!r} does not exist in any source root")


def iter_folder_files(folder: Path, roots: Sequence[Path]) -> Iterator[FolderEntry]:
    """Every regular file under `folder`, depth first, names sorted at each level.

    Hidden names (a leading '.') are skipped silently, files and directories alike. Symlinks
    are followed only to targets inside the roots; each directory is walked at most once, so
    loops end. Entries that are not listed come back as FolderRefusal.
    """
    real_roots = _real_roots(roots)
    top = Path(os.path.realpath(folder))
    if _within(top, real_roots) is None:
        raise PathRefused("outside_roots", f"{str(folder)!r} is not inside a configured source root")
    try:
        top_stat = top.stat()
    except FileNotFoundError:
        raise PathRefused("not_found", f"{str(folder)!r} does not exist") from None
    if not stat.S_ISDIR(top_stat.st_mode):
        raise PathRefused("not_a_directory", f"{str(folder)!r} is not a directory")

    walked: set[tuple[int, int]] = {(top_stat.st_dev, top_stat.st_ino)}
    # Each level is a sorted list consumed from the end; the stack replaces recursion so
    # that a very deep tree cannot exhaust the interpreter's stack.
    stack: list[tuple[Path, str, list[os.DirEntry[str]]]] = []
    listing = _sorted_entries(top)
    if listing is None:
        yield FolderRefusal(".", "unreadable")
        return
    stack.append((top, "", listing))

    while stack:
        _, prefix, pending = stack[-1]
        if not pending:
            stack.pop()
            continue
        entry = pending.pop()
        if entry.name.startswith("."):
            continue
        if not _is_utf8(entry.name):
            safe = entry.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            yield FolderRefusal(prefix + safe, "invalid_name")
            continue
        relative = prefix + entry.name
        outcome = _classify(entry, real_roots)
        if isinstance(outcome, str):
            yield FolderRefusal(relative, outcome)
            continue
        target, target_stat = outcome
        if stat.S_ISREG(target_stat.st_mode):
            yield FolderFile(relative, target, target_stat.st_size, target_stat.st_mtime_ns)
        elif stat.S_ISDIR(target_stat.st_mode):
            identity = (target_stat.st_dev, target_stat.st_ino)
            if identity in walked:
                yield FolderRefusal(relative, "symlink_loop")
                continue
            walked.add(identity)
            children = _sorted_entries(target)
            if children is None:
                yield FolderRefusal(relative, "unreadable")
                continue
            stack.append((target, relative + "/", children))
        else:
            yield FolderRefusal(relative, "special_file")


def _real_roots(roots: Sequence[Path]) -> list[Path]:
    return [Path(os.path.realpath(root)) for root in roots]


def _within(path: Path, real_roots: Sequence[Path]) -> Path | None:
    """The root that contains the resolved `path`, if any."""
    for root in real_roots:
        if path.is_relative_to(root):
            return root
    return None


def _require_directory(resolved: Path, requested: str) -> Path:
    if not resolved.exists():
        raise PathRefused("not_found", f"{requested!r} does not exist")
    if not resolved.is_dir():
        raise PathRefused("not_a_directory", f"{requested!r} is not a directory")
    return resolved


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]] | None:
    """Entries sorted by name, in reverse so that pop() yields them in order."""
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except OSError:
        return None
    entries.sort(key=lambda entry: entry.name, reverse=True)
    return entries


def _classify(entry: os.DirEntry[str], real_roots: Sequence[Path]) -> tuple[Path, os.stat_result] | str:
    """The resolved target and its stat, or the refusal reason."""
    if entry.is_symlink():
        target = Path(os.path.realpath(entry.path))
        if _within(target, real_roots) is None:
            return "symlink_escape"
    else:
        target = Path(entry.path)
    try:
        # lstat the resolved target, not the link, so the check and the result agree.
        target_stat = os.lstat(target)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "broken_symlink"
        if exc.errno == errno.ELOOP:
            return "symlink_loop"
        return "unreadable"
    if stat.S_ISLNK(target_stat.st_mode):
        # realpath stops at a link it cannot resolve: a cycle of symlinks.
        return "symlink_loop"
    return target, target_stat


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
