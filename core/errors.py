"""Errors the library raises. The CLI turns any of them into one line on stderr and exit code 2.

Library code never prints or exits; it raises one of these with a message that names the file,
column or option at fault, so the user can act on it without a traceback.
"""

from __future__ import annotations


class RecsError(Exception):
    """Base class of every error recs reports to a user."""


class InputError(RecsError):
    """An input file is missing, unreadable, empty or not in the expected format."""


class SchemaError(InputError):
    """A table lacks a required column or has one of the wrong type."""


class ConfigError(RecsError):
    """An option or parameter is out of range or inconsistent with the data."""


class OutputError(RecsError):
    """An output cannot be written: the OS refused (read-only, full, not a directory) or the path is taken."""


class ArtifactError(RecsError):
    """A model or index directory is missing, incomplete or of another format version."""


class NotFittedError(RecsError):
    """A candidate generator was asked for candidates before it was fitted (or given a model)."""


class NotInModelError(RecsError, KeyError):
    """A token or item the model has no vector for (``model["42:cart"]``, ``model.similar(42)``).

    A KeyError as well, as a mapping's lookup fails in Python (gensim's ``KeyedVectors`` too), so
    ``except KeyError`` works; its message is shown as given, not quoted as KeyError quotes its key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
