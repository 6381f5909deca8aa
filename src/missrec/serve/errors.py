"""Errors of a serving request: each names the request field at fault and an HTTP status."""

from __future__ import annotations

from ..errors import MissrecError


class RequestError(MissrecError):
    """A bad request: ``field`` names what is wrong (``history``, ``k``, ``items[2].id``...)."""

    def __init__(self, field: str, message: str, status: int = 422):
        self.field = field
        self.message = message
        self.status = status
        super().__init__(f"{field}: {message}")
