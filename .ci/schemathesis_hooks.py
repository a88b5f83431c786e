"""Hooks for .ci/schemathesis.

A book's window may not close before it opens (`expires_at` before `starts_at` is a 400): a rule
between two fields, which JSON Schema cannot state and the document says in words. A new book's
two ends, when both are well-formed, are put in order, so that a valid case stays valid.

A book of a million codes is a valid request, and a slow one: its codes are written before the
answer. The document allows up to 10,000,000; here supplies are kept to at most 1,000 so that the run
tests the contract, not the disk (coupon-bench measures the big loads). Only values inside the
documented range are changed, and to values inside it, so a valid case stays valid and an invalid
one stays invalid.

An `Idempotency-Key` is one client's promise that two requests are the same one: a key that a
generator happens to send with two different requests is rightly refused (422). A valid key is
made unique to its (positive) case, so it stays valid and names one request; an invalid key stays
as it is.
"""

import re
import uuid
from datetime import datetime

import schemathesis

MAX_SUPPLY = 10_000_000
KEPT = 1_000


def _smaller(value):
    # Whole numbers may come as floats (`5000.0`), which the server reads as integers too.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and KEPT < value <= MAX_SUPPLY:
        if value == int(value):
            return int(value) % KEPT + 1
    return value


FIELDS = {
    ("POST", "/coupons"): "total_codes",
    ("POST", "/coupons/{book_id}/codes/generate"): "count",
}


def _instant(value):
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _window_in_order(body):
    starts, expires = _instant(body.get("starts_at")), _instant(body.get("expires_at"))
    if starts and expires and starts.tzinfo and expires.tzinfo and expires < starts:
        body["starts_at"], body["expires_at"] = body["expires_at"], body["starts_at"]


VALID_KEY = re.compile(r"^[ -~]{1,255}$")


def _unique_key(case):
    # A negative case is left whole: an edit would make schemathesis re-judge it as positive and
    # send the headers it meant to leave out (a missing Authorization).
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    headers = case.headers
    for name in list(headers or {}):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.match(value):
            headers[name] = str(uuid.uuid4())


@schemathesis.hook
def before_call(context, case, kwargs):
    _unique_key(case)
    operation = (case.operation.method.upper(), case.operation.path)
    field = FIELDS.get(operation)
    if field and isinstance(case.body, dict) and field in case.body:
        case.body[field] = _smaller(case.body[field])
    if operation == ("POST", "/coupons") and isinstance(case.body, dict):
        _window_in_order(case.body)
