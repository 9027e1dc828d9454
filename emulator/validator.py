"""The stock workers' input check, as `runpod/runpod-python`,
`runpod/serverless/utils/rp_validator.py` (`validate`) does it, step for step: unexpected
keys, schema errors, required keys and defaults, types (an int taken for a float; a value
of the default's type skips the type check), then constraints.

Written here so the emulator needs no `runpod` install; `tests/test_emulator_fidelity.py`
checks it answers exactly as the real function on the same inputs.
"""

from __future__ import annotations

import json

UNEXPECTED_INPUT_ERROR = "Unexpected input. {} is not a valid input option."
MISSING_REQUIRED_ERROR = "{} is a required input."
MISSING_DEFAULT_ERROR = "Schema error, missing default value for {}."
MISSING_TYPE_ERROR = "Schema error, missing type for {}."
CONSTRAINTS_ERROR = "{} does not meet the constraints."
SCHEMA_ERROR = "Schema error, {} is not a dictionary."


def validate(raw_input: dict, schema: dict) -> dict:
    """`{"validated_input": {...}}` or `{"errors": [...]}`."""
    errors: list[str] = []
    validated = raw_input.copy()
    for key in raw_input:
        if key not in schema:
            errors.append(UNEXPECTED_INPUT_ERROR.format(key))
    for key, rules in schema.items():
        if not isinstance(rules, dict):
            try:
                schema[key] = json.loads(rules)
            except json.decoder.JSONDecodeError:
                errors.append(SCHEMA_ERROR.format(key))
    for key, rules in schema.items():
        if "type" not in rules:
            errors.append(MISSING_TYPE_ERROR.format(key))
        if "required" not in rules:
            errors.append(MISSING_REQUIRED_ERROR.format(key))
        elif rules["required"] and key not in raw_input:
            errors.append(MISSING_REQUIRED_ERROR.format(key))
        elif not rules["required"] and key not in raw_input:
            if "default" in rules:
                validated[key] = rules["default"]
            else:
                errors.append(MISSING_DEFAULT_ERROR.format(key))
    for key, rules in schema.items():
        if key in validated:
            try:
                if rules["type"] is float and type(validated[key]) in [int, float]:
                    validated[key] = float(validated[key])
            except TypeError:
                continue
            if "default" in rules and isinstance(validated[key], type(rules["default"])):
                continue
            if not isinstance(validated[key], rules["type"]):
                errors.append(f"{key} should be {rules['type']} type, not {type(validated[key])}.")
        if "constraints" in rules and not rules["constraints"](validated.get(key)):
            errors.append(CONSTRAINTS_ERROR.format(key))
    return {"errors": errors} if errors else {"validated_input": validated}
