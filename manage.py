#!/usr/bin/env python3
"""webhookhub's command line: `./manage.py <command>` from the clone, after `make run`.

Without the project's virtualenv active it runs itself again with the one `make run`
(or `make install`) made in .venv, so the commands in the README and docs/ work as
written from any shell.
"""

import os
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv"


def _use_the_project_venv() -> None:
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if python.exists():
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    try:
        import django  # noqa: F401  (another environment that has it: use that)
    except ImportError:
        sys.exit("webhookhub is not installed yet: run `make run` (or `make install`) first.")


def main() -> None:
    _use_the_project_venv()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookhub.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
