"""The one error the library raises for bad input, naming the offending field.

The service maps it to INVALID_ARGUMENT with a google.rpc.BadRequest field violation; the CLI
prints it. Keeping the field path here (not in the service) means a message is written once, where
the check is.
"""

from __future__ import annotations


class InputError(ValueError):
    """An input (spec, checkpoint or dataset) is invalid.

    `field` is a dotted path a user can find, e.g. "dataset.y_train" or "spec.architecture.hidden_sizes";
    `reason` is an UPPER_SNAKE machine-readable cause (AIP-193 ErrorInfo.reason).
    """

    def __init__(self, field: str, message: str, reason: str = "INVALID_INPUT") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.reason = reason
