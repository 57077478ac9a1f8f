"""Error types of the raw dataset library.

Each is raised where the bad input enters (an append, a static item, a key, a path, a file) and its message
names the signal, key or path together with what was expected. They subclass the built-in error a caller
would naturally catch (ValueError, KeyError, TypeError, RuntimeError).
"""


class TimestampOrderError(ValueError):
    """A signal received a timestamp that is not strictly after its previous one."""


class TimestampTypeError(TypeError):
    """A timestamp is not an integer number of nanoseconds (or a time query has an unsupported type)."""


class SignalValueError(ValueError):
    """A value's kind, shape or dtype differs from the earlier values of its signal, or cannot be stored."""


class NameConflictError(ValueError):
    """A name is used both as a signal and a static item, or a static item is set twice."""


class InvalidNameError(ValueError):
    """A signal or static name cannot be stored (empty, a path separator, or clashing with a format file)."""


class StaticValueError(ValueError):
    """A static item is not plain JSON (str, int, float, bool, lists, dicts with str keys; no null)."""


class ClosedWriterError(RuntimeError):
    """An episode writer is used after it was finalized or aborted."""


class UnknownKeyError(KeyError):
    """An episode has no signal or static item under the requested name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class TimeOutOfRangeError(KeyError):
    """A time query falls before the first timestamp of a signal, where the signal has no value."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class NotADatasetError(ValueError):
    """A path is not a dataset root (missing, a file, or an episode directory)."""


class NotAnEpisodeError(ValueError):
    """A path is not a finished episode directory (missing, or still marked unfinished)."""


class MissingFrameIndexError(ValueError):
    """A video file has no ``<name>.frames.parquet`` frame index beside it."""


class CorruptSignalError(ValueError):
    """A signal file does not follow the format (missing columns, wrong types, frame count mismatch)."""
