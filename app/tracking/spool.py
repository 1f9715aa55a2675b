"""The scan spool: scan rows the database could not take, kept in a local file until it can
(fsynced before their views answer, replayed exactly once)."""

import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlmodel import col

from app.db import utcnow
from app.files import make_private_dir
from app.metrics import SCANS_REFUSED
from app.tracking.models import ScanSpoolProgress
from app.tracking.scanrows import BadRow, insert_scans, json_value

log = logging.getLogger(__name__)
PATTERN = "scans-*.jsonl"
CHUNK_ROWS = 2000
# A line that cannot be stored: no JSON (or JSON nested past the parser's depth), no time
# (written by another version), or a row the database refuses (a bug that met an outage, so
# the commit never told it apart).
_UNSTORABLE = (BadRow, ValueError, KeyError, TypeError, RecursionError)


def _encode(row: dict[str, Any]) -> bytes:
    return json.dumps(row, separators=(",", ":"), default=json_value).encode() + b"\n"


def _private(path: str, flags: int) -> int:
    """A spool file is its owner's alone, as the data folder: scans carry visitors' hashes."""
    return os.open(path, flags, 0o600)


def _decode(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(line)
    row["occurred_at"] = datetime.fromisoformat(row["occurred_at"])  # every row has its time
    return row


class ScanSpool:
    """This process's spool file, and the replay of every sealed one in the directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Durably keep ``rows``; returns only after they reached the disk. A failed append
        (a full disk) leaves none of them: their views answer 503, so none may be replayed."""
        data = b"".join(_encode(row) for row in rows)
        with self._lock:
            fd = self._active_file().fileno()
            end = os.fstat(fd).st_size
            try:
                written = memoryview(data)
                while written:  # unbuffered: what failed to reach the file is not retried
                    written = written[os.write(fd, written) :]
                os.fsync(fd)
            except BaseException:
                self._cut_back(fd, end)
                raise

    def _cut_back(self, fd: int, end: int) -> None:
        try:
            os.ftruncate(fd, end)
        except OSError:  # sealed as it is: its cut-short last line is never replayed
            log.exception("spool file %s not cut back after a failed append", self._path)
            assert self._file is not None
            self._file.close()
            self._file = self._path = None

    def size(self) -> int:
        """Bytes in the directory's spool files: the spool's depth."""
        if not self.directory.is_dir():
            return 0
        return sum(path.stat().st_size for path in self.directory.glob(PATTERN))

    def _active_file(self) -> IO[bytes]:
        if self._file is None:
            make_private_dir(self.directory)
            stamp = utcnow().strftime("%Y%m%dT%H%M%S")
            path = self.directory / f"scans-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
            file = open(path, "ab", buffering=0, opener=_private)
            fcntl.flock(file, fcntl.LOCK_EX)  # ours while we append: nobody replays it
            self._file, self._path = file, path
        return self._file

    def has_active_file(self) -> bool:
        return self._file is not None

    def seal(self) -> None:
        """Close the file being appended to, so that it can be replayed."""
        with self._lock:
            if self._file is not None:
                self._file.close()  # and with it our lock
                self._file = self._path = None

    def pending(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob(PATTERN) if p != self._path)

    def replay(self, engine: Engine) -> int:
        """Replay every sealed file (a dead process's too); returns the number of rows added."""
        added = 0
        for path in self.pending():
            try:
                file = path.open("rb")
            except FileNotFoundError:  # replayed and removed by another process meanwhile
                continue
            with file:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # another live process appends to it, or replays it
                    continue
                added += _replay_file(engine, path, file.read())
                path.unlink()
        return added


def _replay_file(engine: Engine, path: Path, data: bytes) -> int:
    """The file's replayed length is committed with the rows it covers: each row lands once,
    even if a replay is interrupted or two processes replay the file."""
    # A line cut short by a crash was never fsynced whole, so no view was answered for it.
    complete = data[: data.rfind(b"\n") + 1]
    added = 0
    while True:
        with engine.begin() as connection:
            done = _replayed_bytes(connection, path.name)
            if done >= len(complete):
                return added
            lines = complete[done:].splitlines(keepends=True)[:CHUNK_ROWS]
            # The rows go in with the file's progress; rollups and webhook events follow
            # after commit, as for any scan. A row of a deleted offer is left out.
            added += _insert_lines(connection, path, lines)
            connection.execute(
                update(ScanSpoolProgress)
                .where(col(ScanSpoolProgress.name) == path.name)
                .values(replayed_bytes=done + sum(map(len, lines)), updated_at=utcnow())
            )
        log.info("replayed %d spooled scan events from %s", added, path.name)


def _insert_lines(connection: Connection, path: Path, lines: list[bytes]) -> int:
    """Insert the lines' rows; a line that cannot be stored is set aside rather than holding
    up the file, and every file after it, for ever."""
    try:
        with connection.begin_nested():
            return insert_scans(connection, [_decode(line) for line in lines])
    except _UNSTORABLE:
        pass  # find the culprits one line at a time: the rest go in
    added, refused = 0, []
    for line in lines:
        try:
            with connection.begin_nested():
                added += insert_scans(connection, [_decode(line)])
        except _UNSTORABLE as exc:
            refused.append(line)
            log.error("spooled scan event set aside, the database cannot take it: %s", exc)
    if refused:
        _set_aside(path, refused)
    return added


def _set_aside(path: Path, lines: list[bytes]) -> None:
    """Kept before the progress commits, for whoever mends them (a replay repeated after a
    crash may keep a line twice). Visitors' hashes: the owner's alone, as the spool."""
    with open(path.with_name(f"refused-{path.name}"), "ab", opener=_private) as file:
        file.write(b"".join(lines))
        os.fsync(file.fileno())
    SCANS_REFUSED.inc(len(lines))


def _replayed_bytes(connection: Connection, name: str) -> int:
    query = (
        select(col(ScanSpoolProgress.replayed_bytes))
        .where(col(ScanSpoolProgress.name) == name)
        .with_for_update()
    )
    done = connection.execute(query).scalar()
    if done is None:
        connection.execute(insert(ScanSpoolProgress).values(name=name, replayed_bytes=0))
        return 0
    return int(done)
