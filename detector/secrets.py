"""Secrets read from a file or an environment variable, never shown.

Passwords, tokens and signing keys are mounted as files (Kubernetes secrets)
or passed in the environment. Both are read here, the same way for every
setting: a file's trailing newline is dropped, the value travels as
:class:`pydantic.SecretStr` (masked wherever it is printed), and a problem is
one :class:`~detector.errors.ConfigError` line naming the setting and the
file or variable, never the content.

Like :mod:`detector.errors`, this module sits above the data flow: any layer
may import it (docs/architecture.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from detector.errors import ConfigError

__all__ = ["read_secret", "read_secret_file"]


def read_secret_file(path: Path, *, name: str | None = None) -> SecretStr:
    """The secret in the file ``path``, its trailing newline (``\\n``, ``\\r\\n``) dropped.

    A missing, unreadable, non-UTF-8 or empty file is a :class:`ConfigError`
    whose ``where`` is ``name`` (the setting, e.g. ``ssl_password_file``), or
    the path if no name is given.
    """
    where = name or str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"secret file {path} does not exist", where=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read secret file {path}: {reason}", where=where) from None
    value = text.rstrip("\r\n")
    if not value:
        raise ConfigError(f"secret file {path} is empty", where=where)
    return SecretStr(value)


def read_secret(path: Path | None, env: str | None, *, name: str | None = None) -> SecretStr | None:
    """A secret from the file ``path`` (see :func:`read_secret_file`) or else the variable ``env``.

    A variable that is set but empty is a :class:`ConfigError` naming ``name``
    (or the variable). Neither configured, or the variable unset: ``None``.

    >>> read_secret(None, "SIEM_TOKEN", name="webhook.token_env")  # doctest: +SKIP
    SecretStr('**********')
    """
    if path is not None:
        return read_secret_file(path, name=name)
    if env is None:
        return None
    found = os.environ.get(env)
    if found is None:
        return None
    if not found:
        raise ConfigError(f"environment variable {env} is empty", where=name or env)
    return SecretStr(found)
