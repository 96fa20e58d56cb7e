"""Exception types for bad input.

Every message names the field, the value that was given and what is allowed,
so that the command line can print it as is (and exit with status 2).
"""

from __future__ import annotations

from typing import Any


def _one_line(text: Any) -> str:
    """``text`` on one line: control characters (a newline in a file name, in a library's
    message) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text).strip())


class TarePlannerInputError(ValueError):
    """Base class of every error caused by bad input (CLI exit status 2)."""

    def __init__(self, field: str, value: Any, allowed: str, detail: str = ""):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.detail = detail
        super().__init__(self._message())

    def _message(self) -> str:
        message = (f"{_one_line(self.field)}: got {self.value!r}; "
                   f"allowed: {_one_line(self.allowed)}")
        if self.detail:
            message += f" ({_one_line(self.detail)})"
        return message

    def within(self, option: str) -> "TarePlannerInputError":
        """The same error with ``option`` (the command-line option or the document that
        held the value) put before its field."""
        if self.field == option or self.field.startswith(option + " "):
            return self
        copy = TarePlannerInputError.__new__(type(self))
        TarePlannerInputError.__init__(copy, f"{option} {self.field}", self.value,
                                       self.allowed, self.detail)
        return copy


class SchemaError(TarePlannerInputError):
    """The document is not JSON, or not of the expected schema/version."""


class MissingFieldError(TarePlannerInputError):
    """A required field is absent."""

    def __init__(self, field: str, allowed: str, detail: str = ""):
        super().__init__(field, "<missing>", allowed, detail)


class FieldValueError(TarePlannerInputError):
    """A field has a value of the wrong type or outside its range."""


class UnknownNameError(TarePlannerInputError):
    """A name (product, method, nuclide, goal) that the catalogue does not know."""


class UnknownFieldError(UnknownNameError):
    """A field that the document's schema does not have. ``field`` is the field's path
    (``patient.heigth_cm``), ``value`` the unknown key, ``allowed`` the fields allowed there
    and ``detail`` the suggestion ("did you mean 'height_cm'?") or ''. The message reads
    ``patient: unknown field 'heigth_cm'; did you mean 'height_cm'? allowed: id, ...``."""

    def _message(self) -> str:
        key = str(self.value)
        where = self.field[:-len(key)].rstrip(".") if self.field.endswith(key) else self.field
        message = f"{_one_line(where)}: " if where.strip() else ""
        message += f"unknown field {_one_line(repr(self.value))}; "
        if self.detail:
            message += f"{_one_line(self.detail)} "
        return message + f"allowed: {_one_line(self.allowed)}"


class UnsupportedMethodError(TarePlannerInputError):
    """A method that exists but is not supported by the chosen product."""


class ClinicalCutoffError(TarePlannerInputError):
    """A value that is legal in general but excludes treatment (e.g. lung shunt above cut-off)."""


class ImageDataError(TarePlannerInputError):
    """An image file or series that cannot be used; ``field`` names the file and the tag."""


class OutputPathError(TarePlannerInputError):
    """An output that cannot be written where it was asked for (a folder in place of a file,
    a file in place of a folder, no permission, a full disk); ``field`` names the option."""
