"""The public keys, for services that verify tokens on their own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import ResourcesDep

router = APIRouter(tags=["auth"])


@router.get("/.well-known/jwks.json")
async def jwks(resources: ResourcesDep, response: Response) -> dict[str, Any]:
    """Every key that may have signed a live token (RFC 7517 key set)."""
    # Verifiers cache this; a short max-age lets a newly added key spread fast.
    response.headers["Cache-Control"] = "public, max-age=300"
    return resources.keys.jwks()
