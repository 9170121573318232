"""What Quay's API answers, as the client hands it on: users, organizations, robots, team members, repositories
(field names as ../shared/facts/quay-api.md observed them on a real Quay)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provision import answers


@dataclass(frozen=True)
class User:
    username: str
    organizations: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> User:
        orgs = tuple(o["name"] for o in data.get("organizations") or () if isinstance(o, dict) and "name" in o)
        if not isinstance(data["username"], str):
            raise TypeError("username is not a string")
        return cls(username=data["username"], organizations=orgs)


@dataclass(frozen=True)
class Organization:
    name: str
    is_admin: bool
    teams: dict[str, str] = field(default_factory=dict)  # team name -> role; empty unless the caller is a member
    is_member: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Organization:
        teams = {name: str(team.get("role", "")) for name, team in (data.get("teams") or {}).items()}
        return cls(
            name=data["name"],
            is_admin=bool(data.get("is_admin")),
            teams=teams,
            is_member=bool(data.get("is_member")),
        )


@dataclass(frozen=True)
class Robot:
    name: str  # full name, org+short
    token: str = field(repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Robot:
        token = data.get("token")
        # A robot listed without its token (a read that may not see it) has none; one that has it must be text.
        return cls(name=str(data["name"]), token="" if token is None else answers.secret_text(token, field="token"))


@dataclass(frozen=True)
class TeamMember:
    name: str  # user name, org+robot, or an e-mail address for e-mail invites
    is_robot: bool
    invited: bool  # a pending invitation, not yet a member

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TeamMember:
        return cls(
            name=data.get("name") or data.get("email") or "",
            is_robot=bool(data.get("is_robot")),
            invited=bool(data.get("invited")),
        )


@dataclass(frozen=True)
class Repository:
    namespace: str
    name: str
    is_public: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, namespace: str = "") -> Repository:
        return cls(
            namespace=str(data.get("namespace") or namespace),
            name=str(data["name"]),
            is_public=bool(data.get("is_public")),
        )

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"
