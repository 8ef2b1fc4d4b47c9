"""The console's product forms, read into the catalog's own request schemas.

Prices are typed as a decimal amount (``12.50``) and turned into minor units
exactly, with ``Decimal``, never through a float; stock is a whole number.
Everything else is validated by ``ProductCreate``/``ProductUpdate``, the
schemas of POST and PATCH /products. Refusals are per field, in sentences
chosen here: nothing typed is ever written back into the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from api.errors import ProblemError
from api.images import MAX_IMAGE_BYTES, Image, checked_image
from api.schemas.catalog import ProductCreate, ProductUpdate
from api.web.forms import field_errors
from core.money import CURRENCY_EXPONENTS

Errors = dict[str, str]

REQUIRED = "This field is required."
_AMOUNT = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,6})?")
_WHOLE = re.compile(r"[0-9]{1,10}")
# The catalog's image refusals (api/images.py), by problem type.
IMAGE_REFUSALS = {
    "image-too-large": f"The image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB.",
    "unsupported-image": "Choose a PNG, JPEG or WebP image.",
    "image-type-mismatch": "The file's content is not the kind of image its type says. "
    "Choose a PNG, JPEG or WebP image.",
}

# What the image inputs tell the browser, so it refuses a file too large at once.
IMAGE_INPUT = {
    "image_max_bytes": MAX_IMAGE_BYTES,
    "image_too_large": IMAGE_REFUSALS["image-too-large"],
}


class FieldRefused(ValueError):
    """A form value refused; its message is one of the fixed sentences here."""


def minor_units(text: str, currency: str) -> int:
    """``"12.50"`` USD → ``1250``: exact, or FieldRefused when it is no amount of ``currency``."""
    exponent = CURRENCY_EXPONENTS[currency]
    if not _AMOUNT.fullmatch(text):
        raise FieldRefused("Enter an amount like 12.50, with a dot for decimals.")
    amount = Decimal(text).scaleb(exponent)
    if amount != amount.to_integral_value():
        raise FieldRefused(
            "This currency has no decimals."
            if exponent == 0
            else f"This currency has at most {exponent} decimals."
        )
    return int(amount)


def amount_text(minor: int, currency: str) -> str:
    """Minor units as the amount a person types: ``1250`` USD → ``"12.50"``."""
    exponent = CURRENCY_EXPONENTS[currency]
    if exponent == 0:
        return str(minor)
    units, rest = divmod(minor, 10**exponent)
    return f"{units}.{rest:0{exponent}d}"


def whole_number(text: str) -> int:
    if not _WHOLE.fullmatch(text):
        raise FieldRefused("Enter a whole number, like 12.")
    return int(text)


def _number(data: dict[str, str], name: str, errors: Errors, read: Callable[[str], int]) -> int:
    """The field read by ``read`` (an amount or a whole number), 0 with an error when refused."""
    try:
        if name not in data:
            raise FieldRefused(REQUIRED)
        return read(data[name])
    except FieldRefused as refused:
        errors[name] = str(refused)
        return 0


def new_product(data: dict[str, str]) -> tuple[ProductCreate | None, Errors]:
    """The create form as POST /products's body, or the refusals by field."""
    errors: Errors = {}
    currency = data.get("currency", "")
    price = 0
    if currency in CURRENCY_EXPONENTS:  # otherwise the schema names the currency
        price = _number(data, "price", errors, lambda text: minor_units(text, currency))
    stock = _number(data, "stock", errors, whole_number) if "stock" in data else 0
    fields = {
        k: data[k] for k in ("sku", "name", "description", "category", "currency") if k in data
    }
    try:
        body = ProductCreate.model_validate({**fields, "price": price, "stock": stock})
    except ValidationError as err:
        return None, {**field_errors(err), **errors}
    return (None, errors) if errors else (body, errors)


def product_changes(data: dict[str, str], currency: str) -> tuple[ProductUpdate | None, Errors]:
    """The edit form (name, description, category, price) as a PATCH /products body.

    Every field is sent: a blank description clears it; a blank name,
    category or price is refused.
    """
    errors: Errors = {name: REQUIRED for name in ("name", "category") if name not in data}
    price = _number(data, "price", errors, lambda text: minor_units(text, currency))
    changes = {
        "name": data.get("name", "-"),
        "category": data.get("category", "-"),
        "description": data.get("description", ""),
        "price": price,
    }
    try:
        body = ProductUpdate.model_validate(changes)
    except ValidationError as err:
        return None, {**field_errors(err), **errors}
    return (None, errors) if errors else (body, errors)


def stock_change(data: dict[str, str]) -> tuple[ProductUpdate | None, Errors]:
    """The stock form as a PATCH /products body (the same RESTOCK rule)."""
    errors: Errors = {}
    stock = _number(data, "stock", errors, whole_number)
    if errors:
        return None, errors
    try:
        return ProductUpdate.model_validate({"stock": stock}), errors
    except ValidationError as err:
        return None, field_errors(err)


def uploaded(form: FormData) -> UploadFile | None:
    """The form's image file, or None when no file was chosen."""
    upload = form.get("image")
    if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
        return None
    return upload


async def image_of(upload: UploadFile, errors: Errors) -> Image | None:
    """The upload checked as PUT /products/{id}/image checks it; None with an error when refused."""
    try:
        return checked_image(await upload.read(), upload.content_type)
    except ProblemError as err:
        errors["image"] = IMAGE_REFUSALS.get(err.code or "", IMAGE_REFUSALS["unsupported-image"])
        return None
