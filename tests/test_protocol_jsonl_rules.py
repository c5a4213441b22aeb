"""The rules of crash-safe JSON-lines files (protocol/jsonl.py module docstring; README
"Files": one whole line per write, a line a kill cut short is skipped and reported).

In-process and fast: the kill test with real SIGKILLs is in test_durability.py. Here the
writer's rules (line format, file mode, directory creation, lock, short writes, ending a
cut line, the kept descriptor) and the reader's (what is partial, what is corrupt, where
each skipped line is, what is logged, what ``strict`` raises).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.jsonl import (
    JsonlReport,
    JsonlWriter,
    SkippedLine,
    append_jsonl_line,
    encode_jsonl_line,
    read_jsonl,
    read_jsonl_report,
)

fcntl = pytest.importorskip("fcntl")

LOGGER = "protocol.jsonl"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _open_descriptors_of(path: Path) -> int:
    """How many of this process's descriptors name ``path`` (Linux /proc)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue  # the descriptor listdir itself used
    return count


@pytest.fixture(params=["append_jsonl_line", "JsonlWriter"])
def appender(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Callable[[Any], None]]]:
    """Both ways of appending: a call per record, and a writer that keeps its descriptor."""
    path = tmp_path / "t.jsonl"
    writer = JsonlWriter(path)
    try:
        if request.param == "JsonlWriter":
            yield path, writer.append
        else:
            yield path, lambda obj: append_jsonl_line(path, obj)
    finally:
        writer.close()


# =========================================================================== the line format


def test_a_line_is_ascii_json_with_its_newline() -> None:
    """encode_jsonl_line: json.dumps' default separators unless ``compact``; non-ASCII and
    newlines escaped, so a record is exactly one ASCII line."""
    record = {"a": [1, 2], "text": "é\nx"}
    assert encode_jsonl_line(record) == b'{"a": [1, 2], "text": "\\u00e9\\nx"}\n'
    assert encode_jsonl_line(record, compact=True) == b'{"a":[1,2],"text":"\\u00e9\\nx"}\n'
    with pytest.raises(TypeError):
        encode_jsonl_line({"x": object()})


def test_append_writes_the_requested_form(tmp_path: Path) -> None:
    """append_jsonl_line and JsonlWriter pass ``compact`` on (default: not compact)."""
    path = tmp_path / "t.jsonl"
    append_jsonl_line(path, {"a": [1]})
    append_jsonl_line(path, {"a": [2]}, compact=True)
    with JsonlWriter(path) as writer:
        writer.append({"a": [3]})
    with JsonlWriter(path, compact=True) as writer:
        writer.append({"a": [4]})
    assert path.read_bytes() == b'{"a": [1]}\n{"a":[2]}\n{"a": [3]}\n{"a":[4]}\n'
    assert list(read_jsonl(path, strict=True)) == [{"a": [1]}, {"a": [2]}, {"a": [3]}, {"a": [4]}]


# =========================================================================== creating the file


def test_a_new_file_gets_mode_0644_and_its_directory(
    appender: tuple[Path, Callable[[Any], None]], tmp_path: Path
) -> None:
    """The file is created rw-r--r-- (less the umask), in an existing directory or a new one."""
    path, append = appender
    append({"n": 1})
    nested = tmp_path / "a" / "b" / "t.jsonl"
    append_jsonl_line(nested, {"n": 2})
    expected = 0o644 & ~_umask()
    assert path.stat().st_mode & 0o777 == expected
    assert nested.stat().st_mode & 0o777 == expected
    assert path.read_bytes() == b'{"n": 1}\n' and nested.read_bytes() == b'{"n": 2}\n'


def test_a_directory_another_writer_just_made_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers creating the same new directory: the one whose makedirs comes second
    must not fail (exist_ok), its line is written."""
    path = tmp_path / "new" / "t.jsonl"
    real_open = os.open
    raced = []

    def racing_open(name: Any, flags: int, mode: int = 0o777) -> int:
        if not raced:  # our open fails, and the other writer makes the directory meanwhile
            raced.append(name)
            os.mkdir(path.parent)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", name)
        return real_open(name, flags, mode)

    monkeypatch.setattr(os, "open", racing_open)
    append_jsonl_line(path, {"n": 1})
    assert raced and path.read_bytes() == b'{"n": 1}\n'


def test_a_write_only_file_still_gets_whole_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the writer may not read (PermissionError on O_RDWR): appends go on through a
    write-only descriptor, without the tail check (it cannot read the last byte)."""
    path = tmp_path / "w.jsonl"
    path.write_bytes(b'{"n": 0}\n{"n": 1, "cut')
    real_open = os.open
    opened: list[int] = []

    def write_only(name: Any, flags: int, mode: int = 0o777) -> int:
        opened.append(flags & os.O_ACCMODE)
        if flags & os.O_ACCMODE == os.O_RDWR:
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, mode)

    monkeypatch.setattr(os, "open", write_only)
    append_jsonl_line(path, {"n": 2})
    with JsonlWriter(path) as writer:
        writer.append({"n": 3})
    assert opened == [os.O_RDWR, os.O_WRONLY] * 2
    assert path.read_bytes() == b'{"n": 0}\n{"n": 1, "cut{"n": 2}\n{"n": 3}\n'


# =========================================================================== the lock


def test_an_append_waits_for_another_writers_lock(appender: tuple[Path, Callable[[Any], None]]) -> None:
    """The tail check and the write happen under flock(LOCK_EX): while a cooperating writer
    holds the lock, an append waits, and it writes once the lock is released."""
    path, append = appender
    path.write_bytes(b"")
    holder = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        worker = threading.Thread(target=append, args=({"n": 1},))
        worker.start()
        worker.join(0.3)
        blocked = worker.is_alive()
        written_meanwhile = path.read_bytes()
        fcntl.flock(holder, fcntl.LOCK_UN)
        worker.join(10)
    finally:
        os.close(holder)
    assert blocked and written_meanwhile == b"", "the append did not wait for the lock"
    assert not worker.is_alive() and path.read_bytes() == b'{"n": 1}\n'


def test_a_writer_holds_no_lock_between_appends(tmp_path: Path) -> None:
    """A JsonlWriter keeps its descriptor open but releases the lock after each append, so
    other writers are never locked out by an idle writer."""
    path = tmp_path / "t.jsonl"
    with JsonlWriter(path) as writer:
        writer.append({"n": 1})
        other = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if still held
            fcntl.flock(other, fcntl.LOCK_UN)
        finally:
            os.close(other)
        writer.append({"n": 2})
    assert path.read_bytes() == b'{"n": 1}\n{"n": 2}\n'


def test_without_flock_appends_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system without flock (the call fails): lines are still appended whole."""
    calls: list[int] = []

    def failing_flock(fd: int, operation: int) -> None:
        calls.append(operation)
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", failing_flock)
    path = tmp_path / "t.jsonl"
    append_jsonl_line(path, {"n": 1})
    assert calls[0] == fcntl.LOCK_EX and path.read_bytes() == b'{"n": 1}\n'


# =========================================================================== short writes


def _scheduled_write(monkeypatch: pytest.MonkeyPatch, schedule: list[int]) -> list[int]:
    """Make os.write write at most schedule[i] bytes on its i-th call (then everything);
    record the sizes asked for. More than 10 calls is a runaway loop: fail."""
    real_write = os.write
    asked: list[int] = []

    def write(fd: int, data: Any) -> int:
        asked.append(len(data))
        if len(asked) > 10:
            raise AssertionError("os.write called more than 10 times for one line")
        limit = schedule[len(asked) - 1] if len(asked) <= len(schedule) else len(data)
        return real_write(fd, bytes(data[:limit]))

    monkeypatch.setattr(os, "write", write)
    return asked


def test_a_short_write_is_completed(
    appender: tuple[Path, Callable[[Any], None]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A write that stops early (a signal, a full disk) is continued from where it stopped,
    even one byte at a time, until the line is whole; a warning says so."""
    path, append = appender
    record = {"pad": "p" * 40}
    line = encode_jsonl_line(record)
    asked = _scheduled_write(monkeypatch, [5, 1])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        append(record)
    assert asked == [len(line), len(line) - 5, len(line) - 6]
    assert path.read_bytes() == line
    assert [r.getMessage() for r in caplog.records] == [
        f"Short write to {path} (5 of {len(line)} bytes); completing the line"]


def test_a_write_that_makes_no_progress_raises_naming_the_file(
    appender: tuple[Path, Callable[[Any], None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.write returning 0 would loop forever: OSError naming the file and the byte."""
    path, append = appender
    line = encode_jsonl_line({"n": 1})
    _scheduled_write(monkeypatch, [5] + [0] * 20)
    with pytest.raises(OSError) as raised:
        append({"n": 1})
    assert str(raised.value) == f"{path}: the write made no progress at byte 5 of {len(line)}"


# =========================================================================== ending a cut line


def test_an_append_ends_a_line_a_crash_cut_short(
    appender: tuple[Path, Callable[[Any], None]], caplog: pytest.LogCaptureFixture
) -> None:
    """A file whose last byte is not a newline (a writer killed mid-line): the next append
    writes the newline first, with a warning, so its own record parses; a file ending in a
    newline, or empty, gets no extra newline."""
    path, append = appender
    path.write_bytes(b"")
    append({"n": 1})
    with path.open("ab") as handle:
        handle.write(b'{"n": 2, "cut')
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        append({"n": 3})
    append({"n": 4})
    assert path.read_bytes() == b'{"n": 1}\n{"n": 2, "cut\n{"n": 3}\n{"n": 4}\n'
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} ends with a line cut short (an earlier crash); ending it before appending"]
    assert list(read_jsonl(path, strict=True)) == [{"n": 1}, {"n": 3}, {"n": 4}]


# =========================================================================== the kept descriptor


def test_a_writer_opens_its_file_once_and_follows_a_replaced_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JsonlWriter: the file is created on the first append, opened once for many appends,
    reopened when the path names another file (rotated) or none (deleted), and closed by
    close()."""
    path = tmp_path / "trace.jsonl"
    real_open = os.open
    opens: list[str] = []

    def counting_open(name: Any, flags: int, mode: int = 0o777) -> int:
        opens.append(os.fspath(name))
        return real_open(name, flags, mode)

    monkeypatch.setattr(os, "open", counting_open)
    writer = JsonlWriter(path)
    assert not path.exists(), "opened on the first append, not before"
    for n in range(3):
        writer.append({"n": n})
    assert len(opens) == 1
    path.rename(tmp_path / "rotated.jsonl")
    append_jsonl_line(path, {"other": 1})  # a new file under the name
    writer.append({"n": 3})
    assert path.read_bytes() == b'{"other": 1}\n{"n": 3}\n'
    assert _open_descriptors_of(path) == 1
    path.unlink()
    writer.append({"n": 4})
    writer.append({"n": 5})
    writer.close()
    writer.close()  # twice is fine
    assert (tmp_path / "rotated.jsonl").read_bytes() == b'{"n": 0}\n{"n": 1}\n{"n": 2}\n'
    assert path.read_bytes() == b'{"n": 4}\n{"n": 5}\n'
    assert len(opens) == 1 + 1 + 1 + 1  # first, the other writer's, after the rotation, after the unlink
    assert _open_descriptors_of(path) == 0, "close() left the descriptor open"


def test_a_writer_is_reusable_after_close(tmp_path: Path) -> None:
    """close() then append: the writer opens the file again (a context manager per burst)."""
    path = tmp_path / "t.jsonl"
    writer = JsonlWriter(path, compact=True)
    with writer:
        writer.append({"n": 1})
    writer.append({"n": 2})
    writer.close()
    assert path.read_bytes() == b'{"n":1}\n{"n":2}\n'


# =========================================================================== reading


def test_every_skipped_line_has_its_number_offset_length_kind_and_reason(tmp_path: Path) -> None:
    """read_jsonl_report: records in order; blank lines ignored; each skipped line with its
    1-based number, the offset of its first byte, its length without the newline, its kind
    and the parser's reason."""
    lines = [b'{"n": 1}\n', b"\n", b"  \n", b'{"n": 2, "a": tr\n', b"not json\n", b"[3]\n", b'{"n": 4, "cut']
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(lines))
    offsets = [sum(len(line) for line in lines[:index]) for index in range(len(lines))]
    report = read_jsonl_report(path)
    assert isinstance(report, JsonlReport) and report.path == str(path)
    assert report.records == [{"n": 1}, [3]]
    partial_4 = SkippedLine(4, offsets[3], 16, "partial", "Expecting value: line 1 column 15 (char 14)")
    corrupt_5 = SkippedLine(5, offsets[4], 8, "corrupt", "Expecting value: line 1 column 1 (char 0)")
    partial_7 = SkippedLine(7, offsets[6], 13, "partial", "no newline at the end of the file")
    assert report.skipped == [partial_4, corrupt_5, partial_7]
    assert report.partial == [partial_4, partial_7] and report.corrupt == [corrupt_5]


def test_a_clean_file_reports_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"n": 1}\n[2]\n')
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        report = read_jsonl_report(str(path))
    assert report == JsonlReport(str(path), [{"n": 1}, [2]], [])
    assert report.partial == [] and report.corrupt == [] and caplog.records == []


CUT_SHORT = [
    b'{"a": "text',  # in a string
    b'{"a": "\\u00',  # in a \\u escape
    b'{"a": [1, 2',  # after a number
    b'{"a": [1, ',  # after a separator
    b'{"a": nul',  # in a literal
    b'{"a": -Infin',  # in NaN/Infinity, which json.dumps writes
    b'{"a": 1.5e',  # in a number's exponent
    b'{"a"',
    b"{",
    b'{"a": "\xc3',  # in a UTF-8 sequence
    b'{"a": tr\r',  # a cut literal in a file converted to CRLF line ends
]
CORRUPT = [
    b'{"n": 2{"n": 3}',  # two records run together
    b'{"a": 1}x',  # extra data
    b"not json",
    b'{"a": bogus}',
    b'{"a": "\\x"}',  # a bad escape
    b'{"a": "\\u00zz"}',  # a \\u escape that is not hex
    b'{"a": "\xff"}',  # a byte that is not UTF-8
    b'{"a": 1,}',
    b"1\x00",  # parses as UTF-16 only without its newline: not a cut
    b"[" * 100_000 + b"]" * 100_000,  # nested too deep to parse (RecursionError)
]


@pytest.mark.parametrize("cut", CUT_SHORT, ids=range(len(CUT_SHORT)))
def test_a_line_that_only_ends_too_early_is_partial(tmp_path: Path, cut: bytes) -> None:
    """A complete line that fails only because it ends too early is a write cut short
    (then ended by the next writer): partial, skipped even by ``strict``."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"[0]\n" + cut + b"\n[1]\n")
    report = read_jsonl_report(path)
    assert report.records == [[0], [1]]
    assert [(s.number, s.kind, s.length) for s in report.skipped] == [(2, "partial", len(cut))]
    assert list(read_jsonl(path, strict=True)) == [[0], [1]]


@pytest.mark.parametrize("bad", CORRUPT, ids=range(len(CORRUPT)))
def test_any_other_unparsable_line_is_corrupt(tmp_path: Path, bad: bytes) -> None:
    """A complete line that fails for another reason is corrupt: skipped, and ``strict``
    raises ValueError naming path:line and the reason."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"[0]\n" + bad + b"\n[1]\n")
    report = read_jsonl_report(path)
    assert report.records == [[0], [1]]
    assert [(s.number, s.kind, s.length) for s in report.skipped] == [(2, "corrupt", len(bad))]
    assert list(read_jsonl(path)) == [[0], [1]]
    with pytest.raises(ValueError) as raised:
        list(read_jsonl(path, strict=True))
    assert str(raised.value) == f"{path}:2: not a JSON line ({report.skipped[0].reason})"


def test_read_jsonl_warns_once_per_skipped_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """read_jsonl (no report object): each skipped line is logged as a warning naming
    path:line, what it is, its length and the reason."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'not json\n[1]\n{"a": "cut')
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert list(read_jsonl(path)) == [[1]]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}:1: skipping a line that is not JSON (8 bytes; Expecting value: line 1 column 1 (char 0))",
        f"{path}:3: skipping a line cut short by a crash (10 bytes; no newline at the end of the file)",
    ]


@pytest.mark.parametrize("count", [10, 11, 13])
def test_the_report_logs_one_warning_showing_ten_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, count: int
) -> None:
    """read_jsonl_report logs one warning: the counts of partial and corrupt lines, the
    first ten skipped lines, and how many more there are."""
    path = tmp_path / "t.jsonl"
    bad = [b"x" * (index + 1) if index % 2 else b"[" + b"1" * index for index in range(count)]
    path.write_bytes(b"".join(line + b"\n" for line in bad) + b"[0]\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        report = read_jsonl_report(path)
    assert report.records == [[0]]
    partial, corrupt = (count + 1) // 2, count // 2
    assert (len(report.partial), len(report.corrupt)) == (partial, corrupt)
    shown = ", ".join(f"{n + 1} ({'corrupt' if n % 2 else 'partial'}, {n + 1} bytes)" for n in range(10))
    more = f" and {count - 10} more" if count > 10 else ""
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: skipped {partial} partial and {corrupt} corrupt lines: {shown}{more}"]
