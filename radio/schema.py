"""OpenAPI schema postprocessing: the error answers every operation can give, written down once.

drf-spectacular documents what a view declares; the answers DRF gives on its own — 400 for
bad input, 401 without credentials, 403 without the role, 404 for an unknown object or
page — are added here to every operation they apply to, with their JSON bodies, so the
schema says what the API answers (tests/radio/test_api_schemathesis.py holds it to that).
"""

from __future__ import annotations

from typing import Any

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "description": "What went wrong, for people.",
}
FIELD_ERRORS = {
    "type": "object",
    "additionalProperties": {},
    "description": "Field errors: each bad field (or query parameter, or `non_field_errors`) with a list "
                   "of messages; or `detail` when the body could not be read at all.",
}

REASONS = {
    "400": ("FieldErrors", "Bad input: the fields (or query parameters) at fault, each with its messages."),
    "401": ("Detail", "No credentials, or a token that is unknown, expired or revoked."),
    "403": ("Detail", "Signed in, but not a member of the station or without the role this needs."),
    "404": ("Detail", "No such station, object or page."),
    "415": ("Detail", "The body is not in a media type this operation reads (JSON, or multipart for uploads)."),
}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _document(responses: dict[str, Any], code: str) -> None:
    name, description = REASONS[code]
    response = responses.setdefault(code, {"description": description})
    response.setdefault("content", _json(name))


def _blank_is_any_of(node: Any) -> None:
    """drf-spectacular writes a blank-allowed pattern or e-mail field as `oneOf: [rule, maxLength 0]`;
    "" matches both when the rule allows it (`^[a-z]*$`), which `oneOf` forbids: it is `anyOf`."""
    if isinstance(node, dict):
        one_of = node.get("oneOf")
        if isinstance(one_of, list) and {"type": "string", "maxLength": 0} in one_of:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _blank_is_any_of(value)
    elif isinstance(node, list):
        for value in node:
            _blank_is_any_of(value)


def _query_may_be_empty(parameter: dict[str, Any]) -> None:
    # An empty query parameter means "not given": django-filter applies no filter for
    # `?output=` and DRF's pagination reads `?page=` as the first page.
    schema = parameter.get("schema")
    if parameter.get("in") != "query" or not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not ({"enum", "format", "pattern", "minLength"} & schema.keys()):
        return  # any text, the empty one included
    parameter["schema"] = {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: add 400/401/403/404/415 where the operation can answer them."""
    _blank_is_any_of(result)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Detail", DETAIL)
    schemas.setdefault("FieldErrors", FIELD_ERRORS)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            for parameter in parameters:
                _query_may_be_empty(parameter)
            security = operation.get("security") or []
            signed_in_only = bool(security) and {} not in security
            query = [p for p in parameters if p.get("in") == "query"]
            path = [p for p in parameters if p.get("in") == "path"]
            if "requestBody" in operation or query or (signed_in_only and path):
                _document(responses, "400")  # a station slug no station could have is a 400 too
            if security:
                _document(responses, "401")
            if signed_in_only:
                _document(responses, "403")
            if path or any(p.get("name") == "page" for p in query):
                _document(responses, "404")
            if "requestBody" in operation:
                _document(responses, "415")
    return result
