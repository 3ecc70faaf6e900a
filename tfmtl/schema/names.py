"""Users' names and the internal names Keras and TensorFlow need.

A feature, label, mask or task keeps the user's name everywhere the user
looks (frames, dicts, `predict` outputs, `tf.Example` keys, the printed
schema). Keras layer and metric names and SavedModel signature arguments
only take `[A-Za-z0-9_.\\/>-]` and must be valid Python identifiers to be
passed as keyword arguments, so each name also has an internal name:
`internal_name("Age (years)") == "Age_years"`. The rule depends on the name
alone, so it is stable: the same column gets the same internal name in
every model and export.
"""

import hashlib
import keyword
import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_name(name, what):
    """Raises `ValueError` unless `name` is a non-empty string without control characters.

    Any pandas column name is accepted: spaces, hyphens, dots, parentheses,
    a leading digit, non-ASCII letters, Python keywords.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} name must be a non-empty string. Received: name={name!r}")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ValueError(f"{what} name {name!r} holds a control character (a newline, a tab...).")
    return name


def internal_name(name):
    """A safe, stable identifier for `name`.

    Names that are already identifiers (`user_id`, `click`) are kept as they
    are. Otherwise accents are dropped (`é` -> `e`), every run of other
    characters becomes one `_`, leading and trailing `_` are removed, a name
    that does not start with a letter gets a `c_` prefix and a Python keyword
    a `_` suffix. A name with no ASCII letter or digit at all becomes `c_`
    and 8 hex digits of its SHA-1.

    Example:

    >>> [internal_name(n) for n in ["click", "Clothing ID", "1st purchase", "class", "prix €"]]
    ['click', 'Clothing_ID', 'c_1st_purchase', 'class_', 'prix']
    """
    if _IDENTIFIER.match(name) and not keyword.iskeyword(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    safe = _UNSAFE.sub("_", ascii_name).strip("_")
    if not safe:
        return "c_" + hashlib.sha1(name.encode()).hexdigest()[:8]
    if not safe[0].isalpha():
        safe = "c_" + safe
    if keyword.iskeyword(safe):
        safe += "_"
    return safe


def internal_names(names, what="Names"):
    """`{name: internal_name(name)}`, refusing names that share an internal name.

    Raises:
        ValueError: listing every group of names that would collide.
    """
    mapping = {name: internal_name(name) for name in names}
    groups = {}
    for name, safe in mapping.items():
        groups.setdefault(safe, []).append(name)
    clashes = {safe: group for safe, group in groups.items() if len(group) > 1}
    if clashes:
        described = "; ".join(f"{group} all become {safe!r}" for safe, group in clashes.items())
        raise ValueError(
            f"{what} collide once made safe for Keras and TensorFlow: {described}. "
            "Rename one of each group."
        )
    return mapping
