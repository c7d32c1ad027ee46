"""Users, bearer tokens and web UI sessions. Tokens and session ids are random and shown
once; only their SHA-256 is stored (they carry 256 bits of entropy, so a fast hash is
enough: there is nothing to guess).

A session is what signing in to the web UI with a token makes: a fresh random id (the
cookie), the user, the token signed in with, an expiry and a CSRF token bound to it. It
ends when it expires, when the user signs out (revoked here, on every API worker at once)
or when its token is revoked. The token itself never goes into a cookie.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlalchemy import bindparam, delete, insert, select, update

from conveyor.errors import ConveyorError
from conveyor.server.db import sessions, tokens, users

PREFIX = "cvt_"
#: How long a web UI session lasts from signing in.
SESSION_SECONDS = 12 * 3600


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
    by_id = token_or_id.isascii() and token_or_id.isdigit()  # "²" is a digit, not a number
    column = tokens.c.id if by_id else tokens.c.token_hash
    key: Any = int(token_or_id) if by_id else hash_token(token_or_id)
    with engine.begin() as conn:
        row = conn.execute(select(tokens.c.id).where(column == key)).first()
        if row is None:
            raise AuthError("no such token")
        conn.execute(update(tokens).where(tokens.c.id == row[0]).values(revoked_at=time.time()))
        return int(row[0])


class TokenInfo(TypedDict):
    """A token as ``conveyor server tokens list`` shows it: never the token itself."""

    id: int
    created_at: float
    revoked: bool


def list_tokens(engine: Any, name: str) -> list[TokenInfo]:
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
    """The user a bearer token belongs to; AuthError if it is missing, unknown or revoked."""
    if not header or not header.lower().startswith("bearer "):
        raise AuthError("missing bearer token: send 'Authorization: Bearer TOKEN'")
    return token_owner(engine, header[7:].strip())[0]


#: The owner of a token by its hash, built once: every API request runs it, and building the
#: query cost a third of running it.
_OWNER = (
    select(users.c.id, users.c.name, users.c.is_admin, tokens.c.revoked_at, tokens.c.id)
    .join(users, users.c.id == tokens.c.user_id)
    .where(tokens.c.token_hash == bindparam("token_hash"))
)


def token_owner(engine: Any, token: str) -> tuple[User, int]:
    """The user a token belongs to and the token's id; AuthError if unknown or revoked."""
    with engine.connect() as conn:
        row = conn.execute(_OWNER, {"token_hash": hash_token(token)}).first()
    if row is None:
        raise AuthError("invalid token")
    if row[3] is not None:
        raise AuthError("token revoked")
    return User(int(row[0]), str(row[1]), bool(row[2])), int(row[4])


@dataclass(frozen=True)
class Session:
    """A signed-in web UI session: whose it is and the CSRF token its actions must carry."""

    user: User
    csrf: str


def open_session(engine: Any, token: str, seconds: float = SESSION_SECONDS) -> tuple[str, Session]:
    """Sign in with ``token``: a new session id (for the cookie, shown this once) and the
    session; AuthError if the token is unknown or revoked. Expired sessions are swept here."""
    user, token_id = token_owner(engine, token)
    session_id, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
    with engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.expires_at < now))
        conn.execute(
            insert(sessions).values(
                session_hash=hash_token(session_id),
                user_id=user.id,
                token_id=token_id,
                csrf=csrf,
                created_at=now,
                expires_at=now + seconds,
            )
        )
    return session_id, Session(user, csrf)


def find_session(engine: Any, session_id: str | None) -> Session:
    """The live session a cookie names; AuthError if there is none, or it expired, was
    signed out of, or its token was revoked."""
    if not session_id:
        raise AuthError("sign in first")
    with engine.connect() as conn:
        row = conn.execute(
            select(
                users.c.id,
                users.c.name,
                users.c.is_admin,
                sessions.c.csrf,
                sessions.c.expires_at,
                sessions.c.revoked_at,
                tokens.c.revoked_at,
            )
            .join(users, users.c.id == sessions.c.user_id)
            .join(tokens, tokens.c.id == sessions.c.token_id)
            .where(sessions.c.session_hash == hash_token(session_id))
        ).first()
    if row is None or row[5] is not None or row[4] < time.time():
        raise AuthError("your session has ended: sign in again")
    if row[6] is not None:
        raise AuthError("token revoked: sign in with another token")
    return Session(User(int(row[0]), str(row[1]), bool(row[2])), str(row[3]))


def close_session(engine: Any, session_id: str | None) -> bool:
    """Sign out: the session can no longer be used, whoever holds its cookie. False if the
    cookie named no live session."""
    if not session_id:
        return False
    with engine.begin() as conn:
        result = conn.execute(
            update(sessions)
            .where(sessions.c.session_hash == hash_token(session_id), sessions.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
    return bool(result.rowcount)
