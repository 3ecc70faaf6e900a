"""Export for TF Serving: versioned SavedModels, signatures, warm-up records."""

import tfmtl  # noqa: F401  (sets the Keras backend)
from export.saved_model import save, versions
from export.signatures import EXAMPLES_SIGNATURE
from export.warmup import predict_request, read_warmup
