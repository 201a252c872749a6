"""ember's errors: one exception class per status code, each also a subclass of the
built-in exception a Python caller would expect (InvalidArgument is a ValueError,
NotFound a FileNotFoundError, DeadlineExceeded a TimeoutError, ...).

Every error carries `code` (the status code's name) and `message`; an InvalidArgument
raised for a record that failed validation carries `errors`, one dict per problem with
`instance_path` (a JSON Pointer into the record), `schema_path`, `keyword` and
`message`."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List


class Error(Exception):
    """Any error ember reports."""

    code = "Unknown"

    def __init__(self, message: str, errors: Iterable[Dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors: List[Dict[str, Any]] = list(errors)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class Cancelled(Error):
    code = "Cancelled"


class Unknown(Error):
    code = "Unknown"


class InvalidArgument(Error, ValueError):
    code = "InvalidArgument"


class DeadlineExceeded(Error, TimeoutError):
    code = "DeadlineExceeded"


class NotFound(Error, FileNotFoundError):
    code = "NotFound"


class AlreadyExists(Error, FileExistsError):
    code = "AlreadyExists"


class PermissionDenied(Error, PermissionError):
    code = "PermissionDenied"


class ResourceExhausted(Error, MemoryError):
    code = "ResourceExhausted"


class FailedPrecondition(Error, RuntimeError):
    code = "FailedPrecondition"


class Aborted(Error, RuntimeError):
    code = "Aborted"


class OutOfRange(Error, IndexError):
    code = "OutOfRange"


class Unimplemented(Error, NotImplementedError):
    code = "Unimplemented"


class Internal(Error, RuntimeError):
    code = "Internal"


class Unavailable(Error, ConnectionError):
    code = "Unavailable"


class DataLoss(Error, OSError):
    code = "DataLoss"


__all__ = ["Error", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
           "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
           "Internal", "Unavailable", "DataLoss"]
