"""One process at a time on a database for what must run alone: ``helpline run`` (two bots
on one database would both fetch from the platform and answer each other's people) and
``helpline rotate-key`` (a bot writing with the old key meanwhile would leave rows no key
opens). An advisory lock on a file beside the database (``helpline.db.lock``), held for
the life of the process: the operating system lets it go when the process ends, however it
ends, so a kill leaves nothing to clean up. Tools that may run beside the bot (the doctor,
backups, directory imports) do not take it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpline.errors import HelplineError
from helpline.privacy import private_file


class AlreadyRunning(HelplineError):
    """Another process holds the database's run lock."""


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


@contextmanager
def run_alone(db: Path, what: str) -> Iterator[None]:
    """Hold the database's run lock while the block runs, or raise AlreadyRunning."""
    path = lock_path(Path(db))
    private_file(path)  # 0600 in a 0700 folder, like the database
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(
                f"another helpline process is using {db} (helpline run or rotate-key holds "
                f"{path.name}); stop it before {what}") from None
        yield
    finally:
        os.close(fd)  # closing the file lets the lock go


__all__ = ["AlreadyRunning", "lock_path", "run_alone"]
