"""Ceiling (d): the same saga built naively, every step a regular activity.

The bench runs it on a second Temporal dev server with default settings, so
the ratio saga/(d) shows what the saga's tuning gains.
"""

from __future__ import annotations

# Until the saga runs its database steps as local activities, the product
# workflow is itself the naive build.
from workflows.checkout import OrderWorkflow as NaiveOrderWorkflow

__all__ = ["NaiveOrderWorkflow"]
