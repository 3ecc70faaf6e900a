"""`python -m export.serve_check VERSION_DIR`: load a SavedModel as a server would.

Runs in a process that imports no tfmtl code: it loads the SavedModel with
`tf.saved_model.load`, prints its signatures, and replays the warm-up
requests (decoding their tensor protos as TF Serving does), printing the
outputs. Exits non-zero if loading or a request fails.
"""

import json
import os
import re
import sys

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

WARMUP = os.path.join("assets.extra", "tf_serving_warmup_requests")
NAMES = os.path.join("assets.extra", "tfmtl_names.json")


def main(path):
    loaded = tf.saved_model.load(path)
    names = os.path.join(path, NAMES)
    if os.path.exists(names):
        with open(names) as file:
            mapping = json.load(file)["features"]
        renamed = {c: k for c, k in mapping.items() if c != k}
        print(f"names: {len(mapping)} features; serving_default takes each by its internal name"
              + ("" if renamed else " (all equal to the column names)"))
        for column, key in renamed.items():
            print(f"  feature {column!r} -> input {key}")
    else:
        print("no tfmtl_names.json: inputs are the column names")
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
        try:
            outputs = signature(**inputs)
        except tf.errors.InvalidArgumentError as error:
            mapping = json.load(open(names))["features"] if os.path.exists(names) else {}
            columns = {key: column for column, key in mapping.items()}
            keys = sorted(signature.structured_input_signature[1])
            message = re.sub(r"input #(\d+)(?:\(zero-based\))?",
                             lambda m: f"{m.group(0)} [feature "
                                       f"{columns.get(keys[int(m.group(1))], keys[int(m.group(1))])!r}]"
                             if int(m.group(1)) < len(keys) else m.group(0), error.message)
            print(f"warm-up request {count + 1} failed: {message}")
            return 1
        count += 1
        print(f"warm-up request {count} ({request.model_spec.signature_name}):")
        for key, value in sorted(outputs.items()):
            print(f"  {key}: {value.numpy().round(4).tolist()}")
    print(f"ok: {count} warm-up request(s) served")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
