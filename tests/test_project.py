"""The two commands' building blocks: admin account set-up and the hub runner."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_ensure_admin_creates_one_and_prints_the_login_once():
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert "username: admin" in out.getvalue() and "password: " in out.getvalue()
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert "as 'admin'" in again.getvalue() and "password:" not in again.getvalue()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_ensure_admin_takes_the_account_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "correct horse battery")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    user = get_user_model().objects.get(username="ops")
    assert user.is_superuser and user.check_password("correct horse battery")
    assert "correct horse" not in out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("verbose", [False, True])
def test_runhub_serves_the_admin_and_stops_on_ctrl_c(tmp_path, verbose):
    """Quiet by default: its own lines, and the login last, again after stopping (a
    password generated this run); VERBOSE=true adds the workers' and the access log."""
    from tests.test_e2e_qcluster import database_url, wait_until

    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "PORT": str(port),
           "VERBOSE": str(verbose).lower()}  # fmt: skip
    env.pop("DJANGO_SUPERUSER_USERNAME", None)
    log = (tmp_path / "runhub.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runhub"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        import urllib.request

        def admin_answers() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/admin/login/", timeout=2
                ) as r:
                    return r.status == 200
            except OSError:
                return False

        assert wait_until(admin_answers, timeout=30), (tmp_path / "runhub.log").read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert not admin_answers()
    output = (tmp_path / "runhub.log").read_text()
    lines = [line for line in output.splitlines() if line.strip()]
    if verbose:
        assert "Q Cluster" in output and "GET /admin/login/" in output
        return
    assert "Q Cluster" not in output and "GET /admin/" not in output, output
    assert len(lines) <= 12, output
    assert lines[0].startswith("webhookhub is running on") and lines[-1].startswith(
        "Shown this run only"
    )
    password = next(line for line in lines if "password:" in line)
    assert lines.count(password) == 2, output  # after starting, and again on the way out


def test_docs_configuration_lists_every_environment_variable():
    """docs/configuration.md is the one list: every variable settings.py reads is a row of
    its tables (the rows `make run` writes into .env), and each is listed once."""
    import re

    from webhookhub import envfile

    settings_source = (ROOT / "webhookhub" / "settings.py").read_text()
    names = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_source))
    listed = [name for name, _, _ in envfile.rows(envfile.SOURCE.read_text())]
    assert len(names) > 15
    assert not names - set(listed)
    assert len(listed) == len(set(listed))
