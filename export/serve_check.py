"""`python -m export.serve_check VERSION_DIR`: load a SavedModel as a server would.

Runs in a process that imports no tfmtl code: it loads the SavedModel with
`tf.saved_model.load`, prints its signatures, and replays the warm-up
requests (decoding their tensor protos as TF Serving does), printing the
outputs. Exits non-zero if loading or a request fails.
"""

import os
import sys

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

WARMUP = os.path.join("assets.extra", "tf_serving_warmup_requests")


def main(path):
    loaded = tf.saved_model.load(path)
    for name, fn in loaded.signatures.items():
        inputs = fn.structured_input_signature[1]
        print(f"signature {name}:")
        for key, spec in sorted(inputs.items()):
            print(f"  input  {key}: {spec.dtype.name} {spec.shape}")
        for key, spec in sorted(fn.structured_outputs.items()):
            print(f"  output {key}: {spec.dtype.name} {spec.shape}")
    warmup = os.path.join(path, WARMUP)
    if not os.path.exists(warmup):
        print("no warm-up requests in this version")
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(warmup):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        outputs = signature(**inputs)
        count += 1
        print(f"warm-up request {count} ({request.model_spec.signature_name}):")
        for key, value in sorted(outputs.items()):
            print(f"  {key}: {value.numpy().round(4).tolist()}")
    print(f"ok: {count} warm-up request(s) served")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
