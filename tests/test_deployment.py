"""Deployment defaults: security headers and cookies from the environment, and
unhandled errors on stderr with their traceback when DEBUG is off."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


def _settings_in_a_process(**env) -> str:
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, bool(s.CONTENT_SECURITY_POLICY))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SITE_URL"))}
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]  # after the shell's own greeting


def test_secure_cookies_and_hsts_come_from_the_environment():
    assert _settings_in_a_process() == "False False 0 False True"
    assert _settings_in_a_process(SITE_URL="https://hub.example.com") == "True True 0 False True"
    assert (
        _settings_in_a_process(SECURE_COOKIES="true", SECURE_HSTS_SECONDS="31536000",
                               SECURE_HSTS_INCLUDE_SUBDOMAINS="true", CONTENT_SECURITY_POLICY="")
        == "True True 31536000 True False"
    )  # fmt: skip


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/"])
def test_pages_carry_a_content_security_policy(client, path):
    policy = client.get(path)["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_a_blank_policy_sends_no_header(client, settings):
    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in client.get("/")


def test_hsts_is_sent_over_https_when_set(client, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    assert client.get("/", secure=True)["Strict-Transport-Security"] == "max-age=3600"


def test_unhandled_errors_reach_stderr_with_their_traceback_when_debug_is_off():
    code = (
        "import logging\n"
        "try:\n    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('django.request').exception('Internal Server Error: /x')\n"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env={**os.environ, "DEBUG": "false"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Internal Server Error: /x" in out.stderr
    assert "Traceback" in out.stderr and "ZeroDivisionError" in out.stderr


def test_make_run_writes_a_commented_env_file_once_listing_every_setting(tmp_path):
    from webhookhub import envfile

    path = tmp_path / ".env"
    assert envfile.main(["--path", str(path)]) == 0
    text = path.read_text()
    names = [name for name, _, _ in envfile.rows((ROOT / "docs" / "configuration.md").read_text())]
    assert envfile.SOURCE == ROOT / "docs" / "configuration.md"
    assert len(names) > 40 and "WEBHOOK_ALLOWED_NETWORKS" in names and "PORT" in names
    assert all(f"\n# {name}=" in text for name in names)
    assert not [line for line in text.splitlines() if line and not line.startswith("#")]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.write_text("WEBHOOK_ALLOWED_NETWORKS=10.9.0.0/16\n")
    envfile.main(["--path", str(path)])
    assert path.read_text() == "WEBHOOK_ALLOWED_NETWORKS=10.9.0.0/16\n"  # never overwritten
    assert "webhookhub.envfile" in (ROOT / "Makefile").read_text()


def test_a_setting_in_the_env_file_reaches_every_command_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# written by make run\nWEBHOOK_ALLOWED_NETWORKS=10.9.0.0/16\nTIME_ZONE=Europe/Paris\n"
    )
    code = "from django.conf import settings as s; print(s.WEBHOOK_ALLOWED_NETWORKS, s.TIME_ZONE)"
    clean = {
        k: v for k, v in os.environ.items() if k not in {"WEBHOOK_ALLOWED_NETWORKS", "TIME_ZONE"}
    }

    def shell(**env) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
            env={**clean, "WEBHOOKHUB_ENV_FILE": str(env_file), **env},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1]

    assert shell() == "['10.9.0.0/16'] Europe/Paris"
    assert shell(TIME_ZONE="UTC") == "['10.9.0.0/16'] UTC"
