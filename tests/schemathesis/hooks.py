"""Schemathesis checks of Aperture's own contract, loaded by run.sh through SCHEMATHESIS_HOOKS.

`documented_errors` replaces schemathesis's `not_a_server_error`: a 503 is allowed when it is a documented one
(with `Retry-After`), every other 5xx fails; and every error, on every path, must have the one documented body
(`docs/errors.md`) whose `request_id` is the response's `x-request-id`.
"""
import json
import re

import schemathesis

ERROR_FIELDS = {"message", "type", "param", "code", "error_type", "request_id"}
OPTIONAL_FIELDS = {"categories"}
ERROR_TYPES = {"USER_ERROR", "API_ERROR", "NETWORK_ERROR", "SYSTEM_ERROR"}
OPENAI_TYPES = {"authentication_error", "rate_limit_error", "invalid_request_error", "api_error"}
DOCUMENTED_503 = {"IMG_NO_ACCOUNTS", "IMG_OVERLOADED", "IMG_UPSTREAM_UNAVAILABLE"}
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def header(response, name):
    values = response.headers.get(name) or response.headers.get(name.lower())
    if isinstance(values, list):
        return values[0] if values else None
    return values


@schemathesis.check
def request_id_everywhere(ctx, response, case):
    """Every response carries a well-formed x-request-id."""
    rid = header(response, "x-request-id")
    if rid is None or not REQUEST_ID.match(rid):
        raise AssertionError(f"x-request-id missing or malformed: {rid!r}")


@schemathesis.check
def documented_errors(ctx, response, case):
    """Errors have the documented shape; 5xx only as a documented 503 with Retry-After."""
    status = response.status_code
    if status < 400:
        return
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"{status} body is not JSON: {e}") from None
    if case.path == "/readyz" and status == 503:
        # Readiness answers with its own documented body: the reasons it is not ready.
        if body.get("status") != "not_ready" or not body.get("reasons"):
            raise AssertionError(f"/readyz 503 without its reasons: {body!r}")
        if not (header(response, "retry-after") or "").isdigit():
            raise AssertionError("/readyz 503 without Retry-After")
        return
    # A refused component install carries its verification report beside the error (docs/api.md).
    allowed = [{"error"}]
    if "/admin/policy/" in case.path and status == 422:
        allowed.append({"error", "report"})
    if not isinstance(body, dict) or set(body) not in allowed or not isinstance(body["error"], dict):
        raise AssertionError(f"{status} body is not {{\"error\": {{...}}}}: {body!r}")
    error = body["error"]
    missing = ERROR_FIELDS - set(error)
    extra = set(error) - ERROR_FIELDS - OPTIONAL_FIELDS
    if missing or extra:
        raise AssertionError(f"{status} error fields: missing {sorted(missing)}, unexpected {sorted(extra)}")
    if not (isinstance(error["message"], str) and error["message"]):
        raise AssertionError(f"{status} error.message must be a non-empty string")
    if error["type"] not in OPENAI_TYPES or error["error_type"] not in ERROR_TYPES:
        raise AssertionError(f"{status} error.type/error_type not documented: {error!r}")
    if not (isinstance(error["code"], str) and re.match(r"^IMG_[A-Z_]+$", error["code"])):
        raise AssertionError(f"{status} error.code is not an IMG_* code: {error['code']!r}")
    if error["param"] is not None and not isinstance(error["param"], str):
        raise AssertionError(f"{status} error.param must be a string or null")
    if error["request_id"] != header(response, "x-request-id"):
        raise AssertionError(f"{status} error.request_id differs from x-request-id")
    expected_type = {401: "authentication_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error" if status < 500 else "api_error"
    )
    if error["type"] != expected_type:
        raise AssertionError(f"{status} error.type is {error['type']!r}, documented {expected_type!r}")
    if status in (429, 503):
        retry = header(response, "retry-after")
        if retry is None or not retry.isdigit() or int(retry) < 1:
            raise AssertionError(f"{status} without a Retry-After of at least 1 second: {retry!r}")
    if status == 401 and header(response, "www-authenticate") != "Bearer":
        raise AssertionError("401 without WWW-Authenticate: Bearer")
    if status >= 500 and not (status == 503 and error["code"] in DOCUMENTED_503):
        raise AssertionError(f"server error {status} {error['code']}: {error['message']}")
