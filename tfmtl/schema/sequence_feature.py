"""Multi-valued categorical feature."""

import dataclasses

from tfmtl.schema.names import check_name
from tfmtl.schema.sparse_feature import Categorical, _check_lookup

COMBINERS = ("mean", "sum")


@dataclasses.dataclass(frozen=True)
class SequenceFeature(Categorical):
    """A categorical feature with a variable number of values per row.

    A row's raw value is one string whose values are joined by `separator`
    (`"Action|Comedy"`), the form that serves as a single tensor and fits a
    `tf.Example`. The values' embeddings are pooled by `combiner`; an empty
    string is a row with no values.

    Args:
        name: str. Column name and model input name.
        vocabulary: tuple or `None`. Known values; exactly one of
            `vocabulary` and `num_bins` is set.
        num_bins: int or `None`. Number of hash bins.
        separator: str. Separator between values. Defaults to `"|"`.
        combiner: str. `"mean"` or `"sum"` pooling. Defaults to `"mean"`.
        shared_embedding: str or `None`. Name of a table shared with other
            string fields.

    Example:

    >>> SequenceFeature("genres", vocabulary=("Action", "Comedy")).combiner
    'mean'
    """

    name: str
    vocabulary: tuple = None
    num_bins: int = None
    separator: str = "|"
    combiner: str = "mean"
    shared_embedding: str = None

    dtype = "string"

    def __post_init__(self):
        check_name(self.name, "Feature")
        _check_lookup(self)
        if self.combiner not in COMBINERS:
            raise ValueError(
                f"Feature {self.name!r}: combiner must be one of {COMBINERS}. "
                f"Received: combiner={self.combiner!r}"
            )
        if not self.separator:
            raise ValueError(f"Feature {self.name!r}: separator is empty.")
        if self.vocabulary is not None:
            vocabulary = tuple(str(v) for v in self.vocabulary)
            if "" in vocabulary:
                raise ValueError(
                    f"Feature {self.name!r}: the empty string marks a row "
                    "with no values and cannot be in the vocabulary."
                )
            object.__setattr__(self, "vocabulary", vocabulary)
