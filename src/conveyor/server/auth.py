"""Users and bearer tokens. Tokens are random and shown once; only their SHA-256 is stored
(they carry 256 bits of entropy, so a fast hash is enough: there is nothing to guess)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from conveyor.errors import ConveyorError
from conveyor.server.db import tokens, users

PREFIX = "cvt_"


class AuthError(ConveyorError):
    """A user or token cannot be created, found or revoked as asked."""


@dataclass(frozen=True)
class User:
    """A user as a request's credentials resolve to."""

    id: int
    name: str
    is_admin: bool


def hash_token(token: str) -> str:
    """Tokens are stored as their SHA-256 only."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(engine: Any, name: str, admin: bool = False) -> User:
    """Create a user; AuthError if the name is taken."""
    with engine.begin() as conn:
        if conn.execute(select(users.c.id).where(users.c.name == name)).first():
            raise AuthError(f"user '{name}' exists already")
        result = conn.execute(insert(users).values(name=name, is_admin=admin, created_at=time.time()))
        return User(int(result.inserted_primary_key[0]), name, admin)


def create_token(engine: Any, name: str) -> tuple[int, str]:
    """A new token for user ``name``: (token id, the token, shown this once)."""
    token = PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        row = conn.execute(select(users.c.id).where(users.c.name == name)).first()
        if row is None:
            raise AuthError(f"no user '{name}': create it with 'conveyor server users create {name}'")
        result = conn.execute(
            insert(tokens).values(user_id=row[0], token_hash=hash_token(token), created_at=time.time())
        )
        return int(result.inserted_primary_key[0]), token


def revoke_token(engine: Any, token_or_id: str) -> int:
    """Revoke by token id or by the token itself; return the id revoked."""
    column = tokens.c.id if token_or_id.isdigit() else tokens.c.token_hash
    key: Any = int(token_or_id) if token_or_id.isdigit() else hash_token(token_or_id)
    with engine.begin() as conn:
        row = conn.execute(select(tokens.c.id).where(column == key)).first()
        if row is None:
            raise AuthError("no such token")
        conn.execute(update(tokens).where(tokens.c.id == row[0]).values(revoked_at=time.time()))
        return int(row[0])


def list_tokens(engine: Any, name: str) -> list[dict[str, Any]]:
    """A user's tokens: ids and whether revoked."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(tokens.c.id, tokens.c.created_at, tokens.c.revoked_at)
            .join(users, users.c.id == tokens.c.user_id)
            .where(users.c.name == name)
            .order_by(tokens.c.id)
        ).all()
    return [{"id": r[0], "created_at": r[1], "revoked": r[2] is not None} for r in rows]


def authenticate(engine: Any, header: str | None) -> User:
    """The user a bearer token belongs to, or None (unknown or revoked)."""
    if not header or not header.lower().startswith("bearer "):
        raise AuthError("missing bearer token: send 'Authorization: Bearer TOKEN'")
    token = header[7:].strip()
    with engine.connect() as conn:
        row = conn.execute(
            select(users.c.id, users.c.name, users.c.is_admin, tokens.c.revoked_at)
            .join(users, users.c.id == tokens.c.user_id)
            .where(tokens.c.token_hash == hash_token(token))
        ).first()
    if row is None:
        raise AuthError("invalid token")
    if row[3] is not None:
        raise AuthError("token revoked")
    return User(int(row[0]), str(row[1]), bool(row[2]))
