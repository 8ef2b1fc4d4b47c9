"""Every trimmed text field publishes the rule the app enforces.

The app trims text (api/schemas/text.py) and then refuses what is blank. The
OpenAPI document states fields before trimming, so its ``pattern`` must refuse
a value made only of what trimming removes, or a client (or the fuzzer, as
the long Schemathesis run once did with ``"category": "\\u0085"``) sends a
schema-valid body that answers 422. Both directions are checked for every
trimmed field the app has: the published schema refuses blank values, and
every value the published schema accepts, the app accepts.

The fields are found in the code (every request model field that trims), not
listed here, so a new one is covered the day it is added.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Annotated, Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from api.schemas.text import BLANK, strip_text
from core.settings import Settings

# The characters str.strip() removes, as the brief of the rule states them;
# checked against BLANK so the module cannot quietly publish fewer.
STRIP = [chr(c) for c in range(0x110000) if chr(c).strip() == ""]


def _subclasses(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _metadata(field: FieldInfo) -> list[Any]:
    found = list(field.metadata)
    for arg in typing.get_args(field.annotation):  # X | None keeps X's metadata inside
        found += list(getattr(arg, "__metadata__", ()))
    return found


def _trims(field: FieldInfo) -> bool:
    return any(
        getattr(item, "func", None) is strip_text
        or (isinstance(item, StringConstraints) and item.strip_whitespace)
        for item in _metadata(field)
    )


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from pydantic import SecretStr

    from api.keys import generate_private_key_pem
    from api.main import create_app

    settings = Settings(
        mode="dev",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url="postgresql+psycopg://unused@/unused",
        jwt_private_keys=[SecretStr(generate_private_key_pem())],
        _env_file=None,  # type: ignore[call-arg]
    )
    openapi: dict[str, Any] = create_app(settings).openapi()
    return openapi


def _request_models() -> list[type[BaseModel]]:
    import api.main  # noqa: F401  (imports every route module, hence every model)

    return sorted(
        {m for m in _subclasses(BaseModel) if m.__module__.startswith("api.")},
        key=lambda m: m.__name__,
    )


TRIMMED = [
    (model, name, field)
    for model in _request_models()
    for name, field in model.model_fields.items()
    if _trims(field)
]


def _published(document: dict[str, Any], model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = document["components"]["schemas"][model.__name__]["properties"][name]
    for option in schema.get("anyOf", [schema]):  # X | None: the text option
        if option.get("type") == "string":
            return dict(option)
    raise AssertionError(f"{model.__name__}.{name}: no string schema in {schema}")


def _app_accepts(field: FieldInfo, value: str) -> bool:
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]  # type: ignore[valid-type]
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def test_the_blank_set_is_what_str_strip_removes() -> None:
    assert sorted(BLANK) == STRIP


def test_trimmed_fields_are_found_and_none_uses_pydantic_strip() -> None:
    # The product, address and profile names at least; a refactor that hid
    # them from this test must not make it pass by checking nothing.
    labels = {f"{m.__name__}.{n}" for m, n, _ in TRIMMED}
    assert {"ProductCreate.category", "ShippingAddress.country", "UserCreate.name"} <= labels
    # pydantic's strip_whitespace strips another set (Unicode White_Space),
    # so the published pattern would not match it.
    for model in _request_models():
        for name, field in model.model_fields.items():
            for item in _metadata(field):
                if isinstance(item, StringConstraints):
                    assert not item.strip_whitespace, f"{model.__name__}.{name}"


IDS = [f"{m.__name__}.{n}" for m, n, _ in TRIMMED]


@pytest.mark.parametrize(("model", "name", "field"), TRIMMED, ids=IDS)
def test_the_published_pattern_refuses_blank_text(
    document: dict[str, Any], model: type[BaseModel], name: str, field: FieldInfo
) -> None:
    schema = _published(document, model, name)
    if schema.get("minLength", 0) == 0:
        assert _app_accepts(field, " \x85 ")  # blank is allowed here, and so published
        return
    validator = jsonschema_rs.validator_for(schema)
    pattern = re.compile(schema["pattern"])
    for blank in [*STRIP, "".join(STRIP), " \x85\u3000 "]:
        # Refused by the document in both regex dialects (ECMA-262 as
        # JSON Schema tools read it, Python's re), and by the app.
        assert not validator.is_valid(blank), f"{model.__name__}.{name}: {blank!r}"
        assert pattern.search(blank) is None, f"{model.__name__}.{name}: {blank!r}"
        assert not _app_accepts(field, blank)


# Blank values (only what trimming removes), and text mixing such characters
# with ordinary ones and NUL; no lone surrogates (JSON text cannot carry them
# as such).
_TEXT = st.one_of(
    st.text(st.sampled_from(STRIP), min_size=1, max_size=4),
    st.text(
        st.one_of(
            st.sampled_from(STRIP),
            st.sampled_from(["a", "é", "\ufeff", "\u200b", "\x00"]),
            st.characters(exclude_categories=["Cs"]),
        ),
        max_size=8,
    ),
)


@pytest.mark.parametrize(("model", "name", "field"), TRIMMED, ids=IDS)
@given(value=_TEXT)
@settings(derandomize=True, database=None)  # the fast suite must not flake
def test_the_app_accepts_what_the_published_schema_accepts(
    document: dict[str, Any], model: type[BaseModel], name: str, field: FieldInfo, value: str
) -> None:
    schema = _published(document, model, name)
    if jsonschema_rs.validator_for(schema).is_valid(value):
        assert _app_accepts(field, value), f"{model.__name__}.{name}: {value!r}"


@pytest.mark.parametrize(("model", "name", "field"), TRIMMED, ids=IDS)
def test_the_app_refuses_text_longer_than_published_even_if_trimming_would_fit_it(
    document: dict[str, Any], model: type[BaseModel], name: str, field: FieldInfo
) -> None:
    # The document's maxLength is on the text as sent. The long fuzz found a
    # 201-character name with a leading U+001E accepted under maxLength 200,
    # because the length was checked after trimming.
    limit = _published(document, model, name)["maxLength"]
    for pad in [" ", "\x1e", "\x85", "\u3000"]:
        value = pad + "a" * limit
        assert not jsonschema_rs.validator_for(_published(document, model, name)).is_valid(value)
        assert not _app_accepts(field, value), f"{model.__name__}.{name}: {pad!r} + {limit} chars"
    assert _app_accepts(field, " " + "a" * (limit - 1))  # at the limit as sent: fine
