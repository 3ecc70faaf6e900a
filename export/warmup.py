"""TF Serving warm-up records: `assets.extra/tf_serving_warmup_requests`."""

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def predict_request(inputs, model_name, signature_name="serving_default", dtypes=None):
    """A `PredictRequest` holding one tensor proto per input array."""
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
    )
    for name, values in inputs.items():
        dtype = (dtypes or {}).get(name)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(values), dtype=dtype))
    return request


def write_warmup(saved_model_dir, requests):
    """Writes `requests` as PredictionLog records that TF Serving replays at load."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup(saved_model_dir):
    """The `PredictRequest`s of a SavedModel's warm-up file."""
    requests = []
    for record in tf.data.TFRecordDataset(os.path.join(saved_model_dir, WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
