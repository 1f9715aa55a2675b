"""Files written whole or not at all: what a crash or a full disk may interrupt."""

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """``data`` in ``path``, complete or not at all: written to a temporary file beside it,
    flushed to disk, then renamed over ``path``; the rename is flushed too. A reader sees the
    old content or the new, never a part; a full disk leaves the old file as it was."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents, each its owner's alone: the data folder holds
    the database, the secret key, mails and spooled scans, and whichever of them is written
    first makes it. (``mkdir(mode, parents=True)`` gives the mode to the last folder only: a
    missing ``var/`` above ``var/spool`` was 0755.) An existing one is left as its operator
    set it."""
    for folder in reversed([path, *path.parents]):
        if not folder.is_dir():
            folder.mkdir(mode=0o700, exist_ok=True)
