"""Every command the README and the pages in docs/ show works as written, from a shell
where nothing is activated: `./manage.py …` finds the project's virtualenv itself (each
is run with `--help`, so nothing changes), and every `make` target they name exists."""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import ROOT

# The README and docs/*.md: the commands moved to the pages they belong to.
README = "\n".join(
    path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
)
PLAIN_WORD = re.compile(r"^[a-z_][a-z0-9_-]*$")


def manage_commands() -> list[list[str]]:
    """`./manage.py <command> [<subcommand>]` of every mention, in code blocks and spans."""
    found = set()
    for mention in re.findall(r"\./manage\.py((?: [a-z_][a-z0-9_-]*)+)", README):
        words = [w for w in mention.split() if PLAIN_WORD.match(w)]
        found.add(tuple(words[:2] if words[0] in {"webhooks", "tokens"} else words[:1]))
    return sorted(list(words) for words in found)


def shell_env() -> dict[str, str]:
    """A new shell's environment: no virtualenv on PATH or active."""
    path = [p for p in os.environ["PATH"].split(os.pathsep) if ".venv" not in p]
    env = {
        k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE"}
    }
    return {**env, "PATH": os.pathsep.join(path)}


def run_help(words: list[str]) -> tuple[list[str], int, str]:
    done = subprocess.run(["./manage.py", *words, "--help"], cwd=ROOT, env=shell_env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    return words, done.returncode, done.stderr[-500:]


def test_the_readme_names_the_commands_people_run():
    commands = [" ".join(c) for c in manage_commands()]
    for expected in ("webhooks status", "webhooks replay", "tokens create", "qcluster",
                     "runjobs", "shell", "migrate"):  # fmt: skip
        assert expected in commands, commands


def test_every_manage_py_command_in_the_readme_runs_from_a_plain_shell():
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run_help, manage_commands()))
    failed = [(" ".join(words), code, err) for words, code, err in results if code != 0]
    assert not failed, failed


def test_every_make_target_in_the_readme_exists():
    targets = {a or b for a, b in re.findall(r"`make ([a-z]+)`|^make ([a-z]+)", README, re.M)}
    assert {"run", "test"} <= targets
    for target in sorted(targets):
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert dry.returncode == 0, (target, dry.stderr)


def test_the_admin_password_hint_is_a_command_that_works():
    source = (ROOT / "webhookhub/admin_account.py").read_text()
    assert "./manage.py changepassword" in source and " manage.py changepassword" not in source
    _, code, err = run_help(["changepassword"])
    assert code == 0, err


def test_make_run_installs_only_what_running_needs_and_make_test_the_rest():
    def planned(target: str) -> str:  # what make would do on a fresh clone (-B: nothing made yet)
        return subprocess.run(
            ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True
        ).stdout

    run, test = planned("run"), planned("test")
    assert "pip install" in run and "-e ." in run and "[dev]" not in run
    assert "webhookhub.envfile" in run and "runhub" in run
    assert "-e '.[dev]'" in test and "pytest" in test
