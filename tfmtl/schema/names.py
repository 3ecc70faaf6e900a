"""Name checks shared by features and tasks."""

import re

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_name(name, what):
    """Raises `ValueError` unless `name` is usable as a Keras input/output name.

    Such names become SavedModel signature keys and TF op names, so they
    must start with a letter and hold only letters, digits and underscores.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} name {name!r} is not a valid input/output name: it must "
            "start with a letter and contain only letters, digits and "
            f"underscores. Received: name={name!r}"
        )
    return name
