"""Hooks for .ci/schemathesis.

A book of a million codes is a valid request, and a slow one: its codes are written before the
answer. The document allows up to 10,000,000; here supplies are kept to at most 1,000 so that the run
tests the contract, not the disk (coupon-bench measures the big loads). Only values inside the
documented range are changed, and to values inside it, so a valid case stays valid and an invalid
one stays invalid.
"""

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


@schemathesis.hook
def before_call(context, case, kwargs):
    field = FIELDS.get((case.operation.method.upper(), case.operation.path))
    if field and isinstance(case.body, dict) and field in case.body:
        case.body[field] = _smaller(case.body[field])
