"""The one exception type for bad user input.

Anything a user can get wrong (a size that does not parse, alpha outside (0, 1), an unknown GPU,
a wrong key in a TOML file) raises `InputError` with a message that names the value and what was
expected. The CLI turns it into one `error: ...` line on stderr and exit status 2.
"""


class InputError(ValueError):
    """Bad user input; the message names the offending value and the valid range."""
