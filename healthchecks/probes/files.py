"""Files a check may name: CA bundles and kubeconfigs.

A path typed into a check is read by the worker, so it is confined to
HEALTHCHECK_FILES_DIR (symlinks and `..` resolved first); anything else is
refused. Instead of a path a check may hold the pasted content (kept in its
config, masked in the audit log). A pasted kubeconfig may not point at the
worker's files or run commands on it: only inline `*-data` fields, tokens
and basic auth are accepted.

Both the form (a clear field error) and the probe (a refused result, for
checks saved some other way) call these functions.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from .base import ProbeError

REFUSED_SUMMARY = "file refused by the probe file policy"


class FileRefused(ProbeError):
    def __init__(self, message: str):
        super().__init__(message, REFUSED_SUMMARY)


def files_dir() -> str:
    from django.conf import settings

    return getattr(settings, "HEALTHCHECK_FILES_DIR", "") or ""


def allowed_file(path: str, *, what: str) -> str:
    """The real path of `path` if it is a file inside HEALTHCHECK_FILES_DIR
    (a relative path is taken inside it); else FileRefused."""
    base = files_dir()
    if not base:
        raise FileRefused(
            f"{what}: no directory for probe files is configured (HEALTHCHECK_FILES_DIR); paste the content instead"
        )
    if "\x00" in path:
        raise FileRefused(f"{what}: the path contains a NUL character")
    root = os.path.realpath(base)
    candidate = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([root, candidate]) != root:
        raise FileRefused(f"{what} {path[:100]!r} is outside {base} (HEALTHCHECK_FILES_DIR)")
    if not os.path.isfile(candidate):
        raise FileRefused(f"{what} {path[:100]!r} is not a file in {base}")
    return candidate


def tls_context(config: dict) -> ssl.SSLContext | None:
    """The check's TLS context, or None for the shared default one."""
    verify = config.get("verify_tls", True)
    ca_file, ca_pem = config.get("ca_file"), config.get("ca_pem")
    if verify and not ca_file and not ca_pem:
        return None
    cafile = allowed_file(ca_file, what="CA bundle") if ca_file else None
    try:
        context = ssl.create_default_context(cafile=cafile, cadata=ca_pem or None)
    except (ssl.SSLError, ValueError) as exc:
        raise ProbeError("the CA bundle holds no usable PEM certificate", "bad CA bundle") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def check_ca_pem(text: str) -> None:
    try:
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        raise ProbeError("Paste one or more PEM certificates (-----BEGIN CERTIFICATE-----).") from exc


# Kubeconfig fields that name a file on the worker or run a program there.
_FORBIDDEN_CLUSTER = ("certificate-authority", "proxy-url")
_FORBIDDEN_USER = ("client-certificate", "client-key", "tokenFile", "exec", "auth-provider")


def load_kubeconfig_content(text: str) -> dict[str, Any]:
    """Parse a pasted kubeconfig and refuse what would reach the worker's
    files or run commands on it."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProbeError("the pasted kubeconfig is not YAML or JSON", "bad kubeconfig") from exc
    if not isinstance(document, dict) or not isinstance(document.get("clusters"), list):
        raise ProbeError("the pasted kubeconfig has no clusters list", "bad kubeconfig")
    for section, forbidden in (("clusters", _FORBIDDEN_CLUSTER), ("users", _FORBIDDEN_USER)):
        for entry in document.get(section) or []:
            body = entry.get(section[:-1]) if isinstance(entry, dict) else None
            if not isinstance(body, dict):
                raise ProbeError(f"the pasted kubeconfig has a malformed {section} entry", "bad kubeconfig")
            for key in forbidden:
                if key in body:
                    raise FileRefused(
                        f"the pasted kubeconfig uses {key!r}, which reads the worker's files, runs "
                        "a program or goes through a proxy: use the *-data fields or a token"
                    )
    return document
