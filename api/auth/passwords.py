"""Password hashing with argon2id, off the event loop.

argon2 is deliberately slow (about a tenth of a second with the library's
defaults), so every hash and verify runs in a worker thread: one login must
not stall every other request of the process.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()

MIN_LENGTH = 8
# argon2 accepts any length, but hashing megabytes per request is a cheap
# denial of service; no real passphrase is this long.
MAX_LENGTH = 1024


def weakness(password: str, email: str | None) -> str | None:
    """Why ``password`` is refused, or None. The message never contains it."""
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters"
    if email is not None and password.strip().lower() == email.strip().lower():
        return "password must not be the same as the email"
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than ours."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("no account has this password")


async def burn_verify(password: str) -> None:
    """Do the argon2 work of a real verify, for an email with no account.

    Without it, "unknown email" would answer in a millisecond and "wrong
    password" in a tenth of a second, and timing alone would tell an attacker
    which addresses have accounts.
    """
    dummy = await asyncio.to_thread(_dummy_hash)
    await verify_password(dummy, password)
