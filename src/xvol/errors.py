"""The kit's typed errors: one hierarchy rooted at :class:`XvolError`.

Every error says what was wrong and, where it helps, what to do; an operation that raises one
leaves the state it was called on unchanged. Layers define more specific subclasses next to the
code that raises them, always deriving from one of the classes here, so that a caller (the CLI, the
web service, a test) can catch by meaning. This module imports nothing of the kit.
"""

from __future__ import annotations


class XvolError(Exception):
    """Root of every error the kit raises on purpose."""


class InvalidArgumentError(XvolError, ValueError):
    """A request was malformed: a bad size, name, path, parameter or combination of them."""


class NotFoundError(XvolError, LookupError):
    """A named thing (file, snapshot, volume, relationship, object, node) does not exist."""


class AlreadyExistsError(XvolError):
    """A thing with that name or identifier exists already."""


class PermissionDeniedError(XvolError):
    """The caller may not do this (access control, read-only volume, another vserver's object)."""


class OutOfSpaceError(XvolError):
    """No free blocks (or inodes, or snapshot slots) are left for the request."""


class StateError(XvolError):
    """The request is well formed but not allowed in the current state (e.g. a busy or broken
    relationship, a volume that is fenced, a disk that is not failed)."""


class DeviceError(XvolError):
    """A storage device could not serve a request (fail-stop disk, latent sector error)."""


class IntegrityError(XvolError):
    """Stored or transferred bytes do not match their checksum and could not be repaired."""


class DataLossError(IntegrityError):
    """More faults than the redundancy tolerates: the data cannot be reconstructed.

    Raised instead of ever returning wrong bytes.
    """


class UnavailableError(XvolError):
    """A node, site or link did not answer; nothing was changed."""
