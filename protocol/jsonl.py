"""Crash-safe JSON-lines files, shared by the world's trajectories and the agents' files.

Writing: each record is one line, sent by one ``os.write`` on an ``O_APPEND`` descriptor
(a short write is completed), under an advisory ``flock`` so cooperating writers never
interleave. A kill can still cut a long write short; so before appending, a writer that
finds the file's last byte is not a newline ends that cut line first. The cut line stays
behind as a line of its own, and the next record starts clean: a kill never makes a
complete line unparsable.

Reading: a cut line may be the last one (no newline) or in the middle (ended by the next
writer). Both are skipped, reported and logged as warnings; so is a complete line that is
not JSON ("corrupt"), which ``strict`` turns into an error.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
>>> append_jsonl_line(path, {"n": 1})
>>> with path.open("ab") as handle:
...     _ = handle.write(b'{"n": 2, "pad": "cut by a cra')
>>> append_jsonl_line(path, {"n": 3})
>>> report = read_jsonl_report(path)
>>> report.records, [(s.number, s.kind) for s in report.skipped]
([{'n': 1}, {'n': 3}], [(2, 'partial')])
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

try:
    import fcntl
except ImportError:  # not POSIX: appends stay whole lines, only the cross-writer lock is lost
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "JsonlReport",
    "JsonlWriter",
    "SkippedLine",
    "append_jsonl_line",
    "encode_jsonl_line",
    "read_jsonl",
    "read_jsonl_report",
]

logger = logging.getLogger(__name__)

_OPEN_FLAGS = os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_COMPACT = (",", ":")

# --------------------------------------------------------------------------- writing


def encode_jsonl_line(obj: Any, *, compact: bool = False) -> bytes:
    """``obj`` as one ASCII JSON line with its newline (newlines inside strings are escaped).

    Raises TypeError/ValueError for objects that are not JSON, before any I/O happens.
    """
    return (json.dumps(obj, separators=_COMPACT if compact else None) + "\n").encode("ascii")


def append_jsonl_line(path: str | os.PathLike[str], obj: Any, *, compact: bool = False) -> None:
    """Append ``obj`` as one JSON line to ``path``, creating the file and its directory.

    Opens and closes the file each call: right for writers that append now and then
    (a trajectory per episode). Raises TypeError/ValueError if ``obj`` is not
    JSON-serialisable (nothing is written), OSError on I/O errors.
    """
    line = encode_jsonl_line(obj, compact=compact)
    fd, readable = _open(path)
    try:
        _append(fd, readable, line, path)
    finally:
        os.close(fd)


class JsonlWriter:
    """Appends to one file through a descriptor kept open, for writers that append often
    (the monitor's trace file). Nothing is buffered: each record is on disk when
    :meth:`append` returns, so an unclosed writer or a kill loses no complete line.

    The file is opened (and created) on the first append, and reopened when ``path``
    no longer names it (deleted or rotated). Thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], *, compact: bool = False) -> None:
        self.path = path
        self.compact = compact
        self._fd: int | None = None
        self._readable = False
        self._identity: tuple[int, int] = (0, 0)
        self._lock = threading.Lock()

    def append(self, obj: Any) -> None:
        """Append ``obj`` as one line; the same errors as :func:`append_jsonl_line`."""
        line = encode_jsonl_line(obj, compact=self.compact)
        with self._lock:
            if self._fd is None or not self._still_names_file():
                self._close()
                self._fd, self._readable = _open(self.path)
                info = os.fstat(self._fd)
                self._identity = (info.st_dev, info.st_ino)
            _append(self._fd, self._readable, line, self.path)

    def close(self) -> None:
        with self._lock:
            self._close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _still_names_file(self) -> bool:
        try:
            info = os.stat(self.path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._identity

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _open(path: str | os.PathLike[str]) -> tuple[int, bool]:
    """An O_APPEND descriptor, read-write when allowed (to look at the last byte)."""
    try:
        return _open_creating(path, os.O_RDWR), True
    except PermissionError:  # a write-only file: appends work, the tail check cannot
        return _open_creating(path, os.O_WRONLY), False


def _open_creating(path: str | os.PathLike[str], mode: int) -> int:
    try:
        return os.open(path, mode | _OPEN_FLAGS, 0o644)
    except FileNotFoundError:
        parent = os.path.dirname(os.fspath(path))
        if not parent:
            raise
        os.makedirs(parent, exist_ok=True)
        return os.open(path, mode | _OPEN_FLAGS, 0o644)


def _append(fd: int, readable: bool, line: bytes, path: str | os.PathLike[str]) -> None:
    """Write ``line`` whole, ending first a line an earlier crash cut short."""
    locked = _lock(fd, fcntl.LOCK_EX) if fcntl is not None else False
    try:
        if readable and _ends_mid_line(fd):
            logger.warning("%s ends with a line cut short (an earlier crash); ending it before appending", path)
            line = b"\n" + line
        _write_all(fd, line, path)
    finally:
        if locked:
            _lock(fd, fcntl.LOCK_UN)


def _lock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation)
    except OSError as error:  # e.g. a file system without flock: go on without it
        logger.debug("flock on descriptor %d failed: %s", fd, error)  # pragma: no mutate
        return False
    return True


def _ends_mid_line(fd: int) -> bool:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return False
    return os.pread(fd, 1, info.st_size - 1) != b"\n"


def _write_all(fd: int, line: bytes, path: str | os.PathLike[str]) -> None:
    written = os.write(fd, line)
    if written == len(line):
        return
    logger.warning("Short write to %s (%d of %d bytes); completing the line", path, written, len(line))
    view = memoryview(line)
    while written < len(line):
        step = os.write(fd, view[written:])
        if step <= 0:
            raise OSError(f"{path}: the write made no progress at byte {written} of {len(line)}")
        written += step


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A line the reader skipped. ``partial``: a write cut short (the last line without
    its newline, or a line ending where JSON needed more); ``corrupt``: a complete line
    that is not JSON."""

    number: int  # 1-based
    offset: int  # of its first byte
    length: int  # in bytes, without the newline
    kind: Literal["partial", "corrupt"]
    reason: str


@dataclass(slots=True)
class JsonlReport:
    """What :func:`read_jsonl_report` found: the records, and every line it skipped."""

    path: str
    records: list[Any] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)

    @property
    def partial(self) -> list[SkippedLine]:
        return [line for line in self.skipped if line.kind == "partial"]

    @property
    def corrupt(self) -> list[SkippedLine]:
        return [line for line in self.skipped if line.kind == "corrupt"]


def read_jsonl(path: str | os.PathLike[str], *, strict: bool = False) -> Iterator[Any]:
    """Yield the objects of a JSON-lines file, one per line; blank lines are ignored.

    Lines cut short by a crash are skipped with a warning, even when ``strict`` (a crash
    is not corruption). A complete line that is not JSON is skipped with a warning too,
    or raises ValueError naming ``path:line`` when ``strict``.
    """
    for entry in _entries(path):
        if not isinstance(entry, SkippedLine):
            yield entry[0]
            continue
        if strict and entry.kind == "corrupt":
            raise ValueError(f"{path}:{entry.number}: not a JSON line ({entry.reason})")
        _warn(path, entry)


def read_jsonl_report(path: str | os.PathLike[str]) -> JsonlReport:
    """All records of a JSON-lines file, and the lines skipped (with their numbers and
    lengths), which are also logged in one warning."""
    report = JsonlReport(os.fspath(path))
    for entry in _entries(path):
        if isinstance(entry, SkippedLine):
            report.skipped.append(entry)
        else:
            report.records.append(entry[0])
    if report.skipped:
        shown = ", ".join(f"{s.number} ({s.kind}, {s.length} bytes)" for s in report.skipped[:10])
        more = f" and {len(report.skipped) - 10} more" if len(report.skipped) > 10 else ""
        logger.warning("%s: skipped %d partial and %d corrupt lines: %s%s", report.path,
                       len(report.partial), len(report.corrupt), shown, more)
    return report


def _warn(path: str | os.PathLike[str], entry: SkippedLine) -> None:
    what = "a line cut short by a crash" if entry.kind == "partial" else "a line that is not JSON"
    logger.warning("%s:%d: skipping %s (%d bytes; %s)", path, entry.number, what, entry.length, entry.reason)


def _entries(path: str | os.PathLike[str]) -> Iterator[tuple[Any] | SkippedLine]:
    """Each non-blank line as ``(record,)`` or a SkippedLine."""
    with open(path, "rb") as handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            complete = raw.endswith(b"\n")
            length = len(raw) - complete
            if raw.isspace():
                continue
            if not complete:  # even if it parses ("12" of "123"), its writer did not finish
                yield SkippedLine(number, start, length, "partial", "no newline at the end of the file")
                continue
            try:
                yield (json.loads(raw),)
            except (ValueError, RecursionError) as error:
                kind: Literal["partial", "corrupt"] = "partial" if _cut_short(raw[:length]) else "corrupt"
                yield SkippedLine(number, start, length, kind, str(error))


_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")
_NUMBER_TAIL = re.compile(r"-?\d*(?:\.\d*)?(?:[eE][-+]?\d*)?")
_ESCAPE_TAIL = re.compile(r"u[0-9a-fA-F]{0,3}")


def _cut_short(content: bytes) -> bool:
    """Whether a line (without its newline) fails only because it ends too early, as a
    write cut short does; any other failure makes it corrupt."""
    try:
        json.loads(content)
    except (ValueError, RecursionError) as failure:
        error: BaseException = failure
    else:
        return False  # it parses without the newline: something else was wrong
    if isinstance(error, UnicodeDecodeError):
        return error.reason == "unexpected end of data"
    if not isinstance(error, json.JSONDecodeError):
        return False
    if error.msg.startswith("Unterminated string"):
        return True
    tail = error.doc[error.pos:].rstrip()
    if error.msg.startswith("Invalid \\uXXXX escape"):
        return _ESCAPE_TAIL.fullmatch(tail) is not None
    if not error.msg.startswith("Expecting"):  # "Extra data", bad characters
        return False
    return not tail or any(word.startswith(tail) for word in _LITERALS) or _NUMBER_TAIL.fullmatch(tail) is not None
