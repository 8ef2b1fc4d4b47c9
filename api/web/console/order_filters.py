"""The orders table's filter form, read from the query string into the API's own filters.

The form posts by GET, so a filtered table is a link one can share. Blank
fields mean "any"; a value the filters refuse is a 422 page (api/web/errors.py)
that never repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request
from pydantic import ValidationError

from api.errors import ProblemError
from api.schemas.progress import AdminOrderFilters

# The form's field names, as the REST route's query (GET /admin/orders) names them.
FIELDS = ("status", "needs_attention", "customer", "created_from", "created_to")
MAX_PAGE = 10_000


@dataclass(frozen=True)
class TableQuery:
    filters: AdminOrderFilters
    page: int
    # The filters again as a query string ending in "&" (or empty), for the pager's links.
    pager_query: str


def _invalid() -> ProblemError:
    return ProblemError(422, "a filter has a value it cannot take", code="invalid-filter")


def read_filters(request: Request, fields: tuple[str, ...] = FIELDS) -> TableQuery:
    params = request.query_params
    chosen = {name: params[name].strip() for name in fields if params.get(name, "").strip()}
    if chosen.get("needs_attention") == "on":
        # A checkbox sends "on" when ticked and nothing otherwise: ticked means
        # "only those that need attention", unticked means "any".
        chosen["needs_attention"] = "true"
    try:
        filters = AdminOrderFilters.model_validate(chosen)
        page = int(params.get("page") or "1")
    except (ValidationError, ValueError):
        raise _invalid() from None
    if not 1 <= page <= MAX_PAGE:
        raise _invalid()
    kept = {name: params[name] for name in chosen}
    return TableQuery(filters, page, urlencode(kept) + "&" if kept else "")
