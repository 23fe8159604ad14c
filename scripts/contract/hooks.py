"""Schemathesis hooks: the documented rules between values that OpenAPI cannot state.

Each rule is in the parameter's description in the spec; the fuzzer is only kept from sending
requests those rules refuse (they are covered by the Rust tests instead):

- `cursor` is opaque and signed by this gateway: only a cursor it issued is valid, so no
  generated cursor is sent (an empty one means "none" and is kept). This also keeps `page` and
  `cursor` from meeting, which the API refuses (give one or the other).
- `from` must not be after `to`.

An `Idempotency-Key` names one request: reusing it for another account or provider is the
documented 422, which the fuzzer's reused keys meet; schemathesis.toml accepts that 422 on the
refresh operation (and nowhere else).
"""

import re

import schemathesis

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@schemathesis.hook
def filter_query(ctx, query):
    if not query:
        return True
    if query.get("cursor") not in (None, ""):
        return False
    start, end = query.get("from"), query.get("to")
    both_dates = all(isinstance(v, str) and DATE.fullmatch(v) for v in (start, end))
    return not (both_dates and start > end)
