"""Where commands write their results: output folders and files, made ready before any work.

A command that runs for minutes must not fail at its last step because it cannot write its
results. Every command that takes an output path calls :func:`writable_folder` or
:func:`writable_file` while it checks its arguments, so a path it cannot use is a one-line
typed error before anything runs.

Uses: the standard library and :mod:`xvol.errors` only.
"""

from __future__ import annotations

import os
from pathlib import Path

from xvol.errors import InvalidArgumentError


def writable_folder(folder: Path, what: str) -> Path:
    """Create ``folder`` (and its parents) if needed and check that files can be made in it;
    :class:`InvalidArgumentError` naming ``what`` (the option) otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or str(error)
        raise InvalidArgumentError(f"{what}: cannot write to {folder}: {reason}") from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"{what}: cannot write to {folder}: permission denied")
    return folder


def writable_file(path: Path, what: str) -> Path:
    """Make sure the file ``path`` can be written: its folder exists (created if needed) and is
    writable, and ``path`` is not a folder itself."""
    if path.is_dir():
        raise InvalidArgumentError(f"{what}: {path} is a folder, not a file")
    writable_folder(path.parent, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise InvalidArgumentError(f"{what}: cannot write to {path}: permission denied")
    return path
