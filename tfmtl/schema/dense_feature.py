"""Numeric feature."""

import dataclasses
import math

from tfmtl.schema.names import check_name


@dataclasses.dataclass(frozen=True)
class DenseFeature:
    """A numeric feature, normalised inside the model.

    The model computes `(x - mean) / sqrt(variance)`; a missing value (NaN)
    becomes 0 after normalisation, the mean.

    Args:
        name: str. Column name and model input name.
        mean: float. Mean used for normalisation. Defaults to `0.0`.
        variance: float. Variance used for normalisation. Defaults to `1.0`.

    Example:

    >>> DenseFeature("price", mean=9.5, variance=4.0).variance
    4.0
    """

    name: str
    mean: float = 0.0
    variance: float = 1.0

    dtype = "float32"

    def __post_init__(self):
        check_name(self.name, "Feature")
        if not math.isfinite(self.mean) or not math.isfinite(self.variance):
            raise ValueError(
                f"Feature {self.name!r}: mean and variance must be finite. "
                f"Received: mean={self.mean}, variance={self.variance}"
            )
        if self.variance < 0:
            raise ValueError(
                f"Feature {self.name!r}: variance must be >= 0. "
                f"Received: variance={self.variance}"
            )
        object.__setattr__(self, "mean", float(self.mean))
        object.__setattr__(self, "variance", float(self.variance))

    def get_config(self):
        return dataclasses.asdict(self)
