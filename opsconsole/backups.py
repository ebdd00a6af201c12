"""Backups of the console's own PostgreSQL database (docs/operations.md).

The procedure of the operations guide: a timestamped pg_dump, compressed
(pg_dump's custom format is), old dumps deleted after BACKUP_RETENTION_DAYS;
and a restore into an empty database that `manage.py verify_audit` accepts.
Each dump gets a `.sha256` file (`sha256sum -c` reads it) and a `.json`
manifest with the audit log's head at dump time, so a restore proves the
dump is the one written and that the restored log ends where it ended then.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess  # nosec B404  # pg_dump / pg_restore, arguments as a list
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import connection
from django.utils import timezone

PREFIX = "opsconsole-"
SUFFIX = ".dump"


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    """Where libpq connects: host, port, user, password, database name."""

    host: str
    port: str
    user: str
    password: str
    name: str

    @classmethod
    def from_settings(cls) -> Target:
        db = settings.DATABASES["default"]
        if db["ENGINE"] != "django.db.backends.postgresql":
            raise BackupError(
                "backups need PostgreSQL (DATABASE_URL); SQLite is a file: copy it with the console stopped"
            )
        return cls(
            db.get("HOST") or "", str(db.get("PORT") or ""), db.get("USER") or "", db.get("PASSWORD") or "", db["NAME"]
        )

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql", "pgsql") or not parts.path.strip("/"):
            raise BackupError(f"not a PostgreSQL URL with a database name: {parts.scheme}://…")
        return cls(
            parts.hostname or "",
            str(parts.port or ""),
            unquote(parts.username or ""),
            unquote(parts.password or ""),
            unquote(parts.path.strip("/")),
        )

    def args(self) -> list[str]:
        args = []
        if self.host:
            args += ["--host", self.host]
        if self.port:
            args += ["--port", self.port]
        if self.user:
            args += ["--username", self.user]
        return args + ["--dbname", self.name]

    def env(self) -> dict[str, str]:
        # The password travels in the environment, never on a command line (ps shows those).
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def url(self) -> str:
        from urllib.parse import quote

        auth = quote(self.user, safe="") + (f":{quote(self.password, safe='')}" if self.password else "")
        host = self.host or "localhost"
        return f"postgres://{auth}@{host}{':' + self.port if self.port else ''}/{quote(self.name, safe='')}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: list[str], target: Target) -> None:
    result = subprocess.run(command, env=target.env(), capture_output=True, text=True, timeout=6 * 3600)  # nosec B603
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def create(directory: Path, now: datetime.datetime | None = None) -> dict:
    """Dump the database to DIRECTORY/opsconsole-<UTC time>.dump, atomically
    (a partial dump never has the final name), with its checksum and manifest."""
    from .audit import current_heads, format_head

    target = Target.from_settings()
    now = now or timezone.now()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{now.astimezone(datetime.UTC):%Y%m%dT%H%M%SZ}{SUFFIX}"
    partial = final.with_name(final.name + ".partial")
    heads = [format_head(head) for head in current_heads() if head.position]
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", *target.args()], target)
    checksum = sha256_of(partial)
    partial.rename(final)
    Path(f"{final}.sha256").write_text(f"{checksum}  {final.name}\n")
    manifest = {
        "file": final.name,
        "sha256": checksum,
        "bytes": final.stat().st_size,
        "created_at": now.isoformat(),
        "database": target.name,
        # Every audit stream's head (STREAM:POSITION:HASH), for verify_audit --expect-head.
        "audit_heads": heads,
    }
    Path(f"{final}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def prune(directory: Path, retention_days: int, now: float | None = None) -> list[str]:
    """Delete dumps (and their .sha256/.json) older than the retention."""
    limit = (now or time.time()) - retention_days * 86400
    removed = []
    for dump in sorted(directory.glob(f"{PREFIX}*{SUFFIX}")):
        if dump.stat().st_mtime < limit:
            for path in (dump, Path(f"{dump}.sha256"), Path(f"{dump}.json")):
                path.unlink(missing_ok=True)
            removed.append(dump.name)
    return removed


def verify_checksum(dump: Path) -> str:
    sidecar = Path(f"{dump}.sha256")
    if not sidecar.exists():
        raise BackupError(f"{sidecar.name} is missing: cannot tell whether the dump is intact")
    expected = sidecar.read_text().split()[0].lower()
    actual = sha256_of(dump)
    if actual != expected:
        raise BackupError(f"checksum mismatch: {dump.name} is {actual}, {sidecar.name} says {expected}")
    return actual


def manifest_of(dump: Path) -> dict:
    path = Path(f"{dump}.json")
    return json.loads(path.read_text()) if path.exists() else {}


def database_is_empty(target: Target) -> bool:
    """No table in the target (a fresh `createdb`)."""
    import psycopg

    kwargs = {"host": target.host or None, "port": target.port or None, "user": target.user or None}
    kwargs = {k: v for k, v in kwargs.items() if v}
    with psycopg.connect(dbname=target.name, password=target.password or None, connect_timeout=10, **kwargs) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    return row[0] == 0


def restore(dump: Path, target: Target) -> None:
    """pg_restore into an empty database, in one transaction (all or nothing)."""
    if target.name == connection.settings_dict["NAME"] and not database_is_empty(target):
        raise BackupError("refusing to restore over the console's live database")
    if not database_is_empty(target):
        raise BackupError(f"database {target.name} is not empty: restore into a new database (createdb)")
    _run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            *target.args(),
            str(dump),
        ],
        target,
    )
