"""The console's roles, each allowed what the one before it is, and more."""

from __future__ import annotations

from typing import Literal

ROLES = ("advocate", "supervisor", "admin")
Role = Literal["advocate", "supervisor", "admin"]

__all__ = ["ROLES", "Role"]
