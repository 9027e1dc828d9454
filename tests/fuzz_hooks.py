"""schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS).

Generated idempotency keys repeat ("0", "A", ...), and podrelay rightly answers a key
reused with another body with 422, which would hide every other answer. A well-formed
generated key is made unique per request; a malformed one is kept, so it still meets
the 400 it should get.
"""

import re
import uuid

import schemathesis

_VALID = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, **kwargs):
    if case.headers and _VALID.match(str(case.headers.get("Idempotency-Key", ""))):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
