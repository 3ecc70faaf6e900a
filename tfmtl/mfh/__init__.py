"""MFH (Liu et al., CIKM 2022): multi-faceted tasks, their trees and routing.

- `Facet`, `FacetedTasks`, `partition_index` (`facets.py`): behaviours x row
  partitions, each task's row weights, the rule that puts a row in its
  partition;
- `FacetTree` (`tree.py`): the nodes and edges of the flat, hierarchical and
  multi-faceted trees;
- `PartitionIndex`, `RoutedOutput`, `NodeCombiner` (`layers.py`): the Keras
  layers that route rows and combine a node's parents.

The zoo models `flat`, `hmtl` and `mfh` (`zoo/mfh.py`) nest switchers into
these trees.
"""

from tfmtl.mfh.facets import Facet, FacetedTasks, partition_index
from tfmtl.mfh.layers import NodeCombiner, PartitionIndex, RoutedOutput
from tfmtl.mfh.tree import FacetTree
