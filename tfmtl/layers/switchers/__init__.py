"""Switchers: one tensor in, one tensor per branch out."""

from tfmtl.layers.switchers.cgc import CGC
from tfmtl.layers.switchers.mmoe import MMoE
from tfmtl.layers.switchers.omoe import OMoE
from tfmtl.layers.switchers.ple import PLE
from tfmtl.layers.switchers.shared_bottom import SharedBottom
from tfmtl.layers.switchers.switcher import Switcher
