"""limit/offset paging shared by every list route: ``{"items": [...], "total": N}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# PostgreSQL's OFFSET is a BIGINT; a larger number must be a 422, not a 500.
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, description=f"at most {MAX_LIMIT}")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    # A larger limit is capped rather than refused, so a client asking for
    # "everything" gets the largest page instead of an error.
    return Page(limit=min(limit, MAX_LIMIT), offset=offset)


PageDep = Annotated[Page, Depends(page_params)]
