"""The identity a call carries, and the one rule of visibility every servicer applies.

A principal is a name (an API key's name, or a client certificate's subject) and a role. Every audit
and artifact is owned by the principal that created it; a principal sees what it owns, an admin sees
everything. Data dirs from before identities existed, and servers that have issued no key, belong to
ANONYMOUS.
"""

from __future__ import annotations

from dataclasses import dataclass

ANONYMOUS_NAME = "anonymous"


@dataclass(frozen=True)
class Principal:
    name: str
    admin: bool = False

    def sees(self, owner: str) -> bool:
        """Whether this principal may know that something owned by `owner` exists."""
        return self.admin or owner == self.name

    @property
    def owner_filter(self) -> str | None:
        """The owner a listing is restricted to; None (all owners) for an admin."""
        return None if self.admin else self.name


ANONYMOUS = Principal(ANONYMOUS_NAME)


def principal_of(context: object) -> Principal:
    """The caller of a servicer method: call_guard authenticated it and put it on the context it passes."""
    return context.principal  # type: ignore[attr-defined]
