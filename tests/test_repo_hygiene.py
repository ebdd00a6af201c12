"""The repository never tracks the local virtualenv: a tracked `.venv` (a
symlink, which the '.venv/' ignore rule did not match) replaced the shared
virtualenv with a link to itself when checked out. Runs before landing, with
the other top-level tests."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_virtualenv_is_tracked():
    tracked = subprocess.run(
        ["git", "ls-files", "--", ".venv", "venv", "*/.venv"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked == [], f"untrack it: git rm --cached {' '.join(tracked)}"
