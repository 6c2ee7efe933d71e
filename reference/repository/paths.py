"""Path names of the namespace: parsing, checking and normalising them.

A vserver's namespace is one POSIX-like tree rooted at ``/``. A path is absolute, its components
are non-empty, contain neither ``/`` nor NUL, and are at most :data:`MAX_NAME` bytes in UTF-8.
``.`` and ``..`` are resolved lexically; a path whose ``..`` would climb above the root points
outside the vserver's namespace and is refused with :class:`PathOutsideNamespaceError`. A path
never encodes where an object lives (seed: the directory entry points to a redirector, so moving
an object changes no path).

Uses: :mod:`xvol.errors` only.
"""

from __future__ import annotations

from xvol.errors import InvalidArgumentError, PermissionDeniedError

MAX_NAME = 200
MAX_PATH = 4096
MAX_DEPTH = 64


class PathOutsideNamespaceError(PermissionDeniedError):
    """The path climbs above the root of the vserver's namespace."""


def split_path(path: str) -> tuple[str, ...]:
    """The components of ``path`` after resolving ``.`` and ``..``; ``()`` is the root."""
    if not isinstance(path, str):
        raise InvalidArgumentError(f"a path is a string, got {type(path).__name__}")
    if not path.startswith("/"):
        raise InvalidArgumentError(f"path {path!r} must be absolute (start with /)")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise InvalidArgumentError(f"path is longer than {MAX_PATH} bytes")
    parts: list[str] = []
    for name in path.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if not parts:
                raise PathOutsideNamespaceError(
                    f"path {path!r} climbs above the root of the vserver's namespace"
                )
            parts.pop()
            continue
        check_name(name)
        parts.append(name)
    if len(parts) > MAX_DEPTH:
        raise InvalidArgumentError(f"path {path!r} is deeper than {MAX_DEPTH} levels")
    return tuple(parts)


def check_name(name: str) -> None:
    """Raise :class:`InvalidArgumentError` unless ``name`` may be one path component."""
    if "\x00" in name or "/" in name:
        raise InvalidArgumentError(f"a name may not contain NUL or '/': {name!r}")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"name {name!r} is not valid Unicode text") from exc
    if not encoded or len(encoded) > MAX_NAME:
        raise InvalidArgumentError(f"a name has 1..{MAX_NAME} bytes, got {len(encoded)}")


def normalise(path: str) -> str:
    """The canonical spelling of ``path`` (``/a/b``; the root is ``/``)."""
    return "/" + "/".join(split_path(path))


def parent_and_name(path: str) -> tuple[str, str]:
    """``(parent path, last name)`` of a path that is not the root."""
    parts = split_path(path)
    if not parts:
        raise InvalidArgumentError("the root directory has no name and no parent")
    return "/" + "/".join(parts[:-1]), parts[-1]


def is_within(path: str, ancestor: str) -> bool:
    """Whether normalised ``path`` is ``ancestor`` or lies below it."""
    return path == ancestor or ancestor == "/" or path.startswith(ancestor + "/")
