"""The auth service: accounts, passwords, tokens and the JWKS.

It runs alone (``create_auth_app``, ``ordersaga auth``) or its routers are
mounted into the main API (``settings.serve_auth``, the dev default).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import jwks, profile, recovery, routes

routers: list[APIRouter] = [routes.router, recovery.router, profile.router, jwks.router]

__all__ = ["routers"]
