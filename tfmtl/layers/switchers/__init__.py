"""Switchers: inputs in, one tensor per branch out (one contract for all, see `Switcher`)."""

from tfmtl.layers.switchers.cgc import CGC
from tfmtl.layers.switchers.mmoe import MMoE
from tfmtl.layers.switchers.omoe import OMoE
from tfmtl.layers.switchers.ple import PLE
from tfmtl.layers.switchers.registry import SWITCHERS, register_switcher, switcher_for
from tfmtl.layers.switchers.shared_bottom import SharedBottom
from tfmtl.layers.switchers.stem import STEMLayer
from tfmtl.layers.switchers.switcher import Switcher
