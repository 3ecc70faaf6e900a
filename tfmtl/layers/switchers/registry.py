"""Switchers by name, for trees (MFH), presets and search (AutoMTL)."""

import inspect

from tfmtl.layers.switchers.cgc import CGC
from tfmtl.layers.switchers.mmoe import MMoE
from tfmtl.layers.switchers.omoe import OMoE
from tfmtl.layers.switchers.ple import PLE
from tfmtl.layers.switchers.shared_bottom import SharedBottom
from tfmtl.layers.switchers.stem import STEMLayer
from tfmtl.layers.switchers.switcher import Switcher

SWITCHERS = {
    "shared_bottom": SharedBottom,
    "omoe": OMoE,
    "mmoe": MMoE,
    "cgc": CGC,
    "ple": PLE,
    "stem": STEMLayer,
}


def register_switcher(name, cls):
    """Makes `cls` (a `Switcher`) available by `name` to `switcher_for`."""
    if name in SWITCHERS and SWITCHERS[name] is not cls:
        raise ValueError(f"A switcher named {name!r} is already registered: {SWITCHERS[name]}")
    SWITCHERS[name] = cls
    return cls


def switcher_for(spec, num_branches, name=None, **options):
    """A switcher from a spec: a name in `SWITCHERS`, or `{"type": name, **kwargs}`.

    Example:

    >>> switcher_for({"type": "mmoe", "num_experts": 2, "expert_units": [4]}, 3).num_experts
    2
    """
    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = spec.pop("type", None)
    if kind not in SWITCHERS:
        raise ValueError(f"Unknown switcher {kind!r}; choose from {sorted(SWITCHERS)}.")
    cls = SWITCHERS[kind]
    known = _arguments(cls)
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"Switcher {kind!r} has no arguments {unknown}. "
                         f"Its arguments: {sorted(known - {'num_branches'})}")
    return cls(num_branches, name=name, **spec, **options)


def _arguments(cls):
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= set(inspect.signature(klass.__init__).parameters) - {"self", "kwargs"}
        if klass is Switcher:
            break
    return names
