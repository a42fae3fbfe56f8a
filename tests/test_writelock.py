"""SQLite writers queue on a file lock (woken at once) rather than sleeping in
SQLite's busy handler."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import connection

from hooks.worker import writelock


def _free_elsewhere(path: str) -> bool:
    """Whether another process could take the lock right now."""
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, path]).returncode == 0


def test_the_lock_is_held_for_the_whole_outer_block_even_when_nested(tmp_path):
    path = str(tmp_path / "db.sqlite3.writers")
    with writelock.serialized(path):
        with writelock.serialized(path):
            assert not _free_elsewhere(path)
        assert not _free_elsewhere(path)  # the inner block did not let go
    assert _free_elsewhere(path)


@pytest.mark.django_db
def test_the_lock_sits_beside_a_sqlite_database_file_and_is_not_used_elsewhere():
    path = writelock.database_lock_path()
    if connection.vendor == "sqlite":
        assert path == f"{connection.settings_dict['NAME']}.writers"
    else:
        assert path is None
        with writelock.serialized():  # nothing to take
            pass
