"""A typed value read tolerantly: what crosses a process or the network between releases.

The manifest refuses what is wrong; a status row or a heartbeat must not. A board of the
previous release (or the next one) writes fields this one does not know, lacks fields it
added, or holds a value of another type: unknown fields are ignored, missing ones take
their default, and an ill-typed value is dropped to its default (a wrong item of a list
drops that item only). Values are strict (``True`` is not an integer, ``1`` is not a
boolean), so a reader never sees a guess. What was given is what is written back:
:meth:`Tolerant.to_json` leaves out the fields that were never set, so a row or a
document keeps its shape on the wire and in the database.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator


def _without_errors(data: dict[str, Any], error: ValidationError) -> dict[str, Any]:
    """``data`` less the fields (or list items) that ``error`` names."""
    drop: set[str] = set()
    items: dict[str, set[int]] = {}
    for e in error.errors():
        loc = e["loc"]
        if not loc or not isinstance(loc[0], str):
            continue
        if len(loc) > 1 and isinstance(loc[1], int) and isinstance(data.get(loc[0]), list):
            items.setdefault(loc[0], set()).add(loc[1])
        else:
            drop.add(loc[0])
    out = {k: v for k, v in data.items() if k not in drop}
    for key, bad in items.items():
        if key in out:
            out[key] = [v for i, v in enumerate(out[key]) if i not in bad]
    return out


class Tolerant(BaseModel):
    """Base of every typed row and document that crosses a process or the network."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    @model_validator(mode="wrap")
    @classmethod
    def _tolerate(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, dict):
            return handler(data)  # a model instance passes; anything else is refused
        for _ in range(3):  # a field dropped may reveal nothing new; three rounds suffice
            try:
                return handler(data)
            except ValidationError as e:
                smaller = _without_errors(data, e)
                if smaller == data:
                    raise
                data = smaller
        return handler(data)

    @classmethod
    def read(cls, data: Any) -> Self:
        """The value in ``data`` (decoded JSON); never raises: junk gives the defaults."""
        try:
            return cls.model_validate(data if isinstance(data, dict) else {})
        except ValidationError:
            return cls.model_validate({})

    def to_json(self) -> dict[str, Any]:
        """The JSON object, with exactly the fields that were set."""
        return self.model_dump(mode="json", exclude_unset=True)
