"""Export for TF Serving: versioned SavedModels, signatures, warm-up records."""

import tfmtl  # noqa: F401  (sets the Keras backend)
from export.saved_model import save, versions
from export.signatures import EXAMPLES_SIGNATURE
from export.warmup import predict_request, read_warmup
from export.client import Client, ServingError, build_request, parse_response
from export.model_config import model_config
