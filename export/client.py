"""Clients of a TF Serving model: gRPC (PredictionService) or REST (`:predict`)."""

import json
import re
import socket
import urllib.error
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfmtl.schema.names import internal_name


class ServingError(RuntimeError):
    """The server did not answer, or answered with an error."""


_KINDS = {tf.string: "U", tf.int64: "i", tf.int32: "i", tf.float32: "f", tf.float64: "f"}


def build_request(features, specs, model_name, signature_name="serving_default", version=None,
                  names=None):
    """A `PredictRequest` from a dict of Python/NumPy values.

    Args:
        features: dict of column name (or signature input) to a value or a
            list/array of values (one per row; a scalar is a batch of one).
        specs: dict of signature input to `tf.DType` (the signature's inputs).
        model_name: str. The model's name in the server.
        signature_name: str. Defaults to `"serving_default"`.
        version: int or `None` (the newest).
        names: dict of column name to signature input (the export's
            `tfmtl_names.json` `features`), or `None` to derive them with
            `tfmtl.schema.names.internal_name`, the rule the export used.

    Raises:
        ValueError: a feature is missing, unknown, of the wrong dtype, or
            the features' lengths differ.
    """
    features = _by_signature_input(features, specs, names)
    missing = sorted(set(specs) - set(features))
    if missing:
        raise ValueError(f"Missing feature(s) {missing}; the signature takes {sorted(specs)}")
    unknown = sorted(set(features) - set(specs))
    if unknown:
        raise ValueError(f"Unknown feature(s) {unknown}; the signature takes {sorted(specs)}")
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
    )
    if version is not None:
        request.model_spec.version.value = int(version)
    lengths = {}
    for name, dtype in specs.items():
        values = _array(features[name], name, tf.as_dtype(dtype))
        lengths[name] = len(values)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.as_dtype(dtype)))
    if len(set(lengths.values())) > 1:
        raise ValueError(f"Features have different lengths: {lengths}")
    return request


def _by_signature_input(features, specs, names):
    """`features` keyed by signature input: column names are translated."""
    renamed = {}
    for column, values in features.items():
        if column in specs:
            target = column
        elif names is not None and column in names:
            target = names[column]
        else:
            target = internal_name(column)
        if target in renamed:
            raise ValueError(f"Features {column!r} and another name the same signature "
                             f"input {target!r}.")
        renamed[target] = values
    return renamed


def _array(value, name, dtype):
    values = np.asarray(value)
    if values.ndim == 0:
        values = values.reshape(1)
    if values.ndim != 1:
        raise ValueError(f"Feature {name!r} must be one value per row. Received shape {values.shape}")
    kind = values.dtype.kind
    if dtype == tf.string:
        if kind not in "USO" or (kind == "O" and not all(isinstance(v, (str, bytes)) for v in values)):
            raise ValueError(f"Feature {name!r} takes strings. Received {values.dtype} values")
        return values.astype(object)
    if dtype.is_integer:
        if kind not in "iu":
            raise ValueError(f"Feature {name!r} takes integers ({dtype.name}). Received {values.dtype} values")
        return values.astype(dtype.as_numpy_dtype)
    if kind not in "iuf":
        raise ValueError(f"Feature {name!r} takes numbers ({dtype.name}). Received {values.dtype} values")
    return values.astype(dtype.as_numpy_dtype)


def name_inputs(message, inputs, names=None):
    """Adds the feature's name to TensorFlow's `input #N(zero-based)` in an error message.

    TensorFlow numbers a signature's inputs in sorted order of their keys;
    `inputs` are those keys, `names` the export's column -> key mapping.
    """
    columns = {key: column for column, key in (names or {}).items()}

    def named(match):
        index = int(match.group(1))
        if index >= len(inputs):
            return match.group(0)
        key = inputs[index]
        column = columns.get(key, key)
        label = f"feature {column!r}" + (f" (signature input {key!r})" if column != key else "")
        return f"{match.group(0)} [{label}]"

    return re.sub(r"input #(\d+)(?:\(zero-based\))?", named, str(message))


def parse_response(response):
    """A dict of output name to NumPy array, from a `PredictResponse`."""
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


class Client:
    """Calls one model of a TF Serving server and returns NumPy arrays per task.

    Args:
        target: `"host:port"` of the gRPC port (8500), or an `http://`
            URL of the REST port (8501).
        model_name: str. The model's name in the server.
        specs: dict of input name to dtype, or `None` to ask the server
            (model metadata) once.
        signature_name: str. Defaults to `"serving_default"`.
        timeout: float. Seconds before a call fails. Defaults to `5.0`.
        names: the export's names (a version directory holding
            `assets.extra/tfmtl_names.json`, or that file's dict), so that
            features are given by column name (`"Clothing ID"`); without it
            column names are translated by the same rule the export used.

    Example (with a server running):

        client = Client("localhost:8500", "ranker")
        client.predict({"user_id": [3, 7], "city": ["paris", "lyon"], ...})
        # {"click": array([...]), "like": array([...])}
    """

    def __init__(self, target, model_name, specs=None, signature_name="serving_default", timeout=5.0,
                 names=None):
        if isinstance(names, str):
            from export.saved_model import read_names

            path, names = names, read_names(names)
            if names is None:
                raise ValueError(f"No tfmtl_names.json under {path}")
        self.names = None if names is None else dict(names["features"])
        self.target = target
        self.model_name = model_name
        self.signature_name = signature_name
        self.timeout = float(timeout)
        self.rest = target.startswith(("http://", "https://"))
        if not self.rest:
            self._channel = grpc.insecure_channel(target)
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._specs = specs

    @property
    def specs(self):
        if self._specs is None:
            self._specs = self._metadata()
        return self._specs

    def predict(self, features, version=None):
        """`{output: np.ndarray}` for the rows in `features`."""
        request = build_request(features, self.specs, self.model_name, self.signature_name, version,
                                names=self.names)
        if self.rest:
            return self._rest_predict(request, version)
        response = self._call(self._stub.Predict, request)
        return parse_response(response)

    def close(self):
        if not self.rest:
            self._channel.close()

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise self._error(error.code(), error.details()) from None

    def _error(self, code, details):
        details = name_inputs(details, sorted(self._specs or {}), self.names)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ServingError(f"{self.target} did not answer within {self.timeout:g} s")
        if code == grpc.StatusCode.UNAVAILABLE:
            return ServingError(f"No server answers at {self.target}: {details}")
        if code == grpc.StatusCode.NOT_FOUND:
            return ServingError(f"The server at {self.target} has no model {self.model_name!r}: {details}")
        return ServingError(f"{self.target} answered {code.name}: {details}")

    def _metadata(self):
        if self.rest:
            body = self._http("GET", f"/v1/models/{self.model_name}/metadata")
            signature = body["metadata"]["signature_def"]["signature_def"][self.signature_name]
            return {name: tf.as_dtype(types_pb2.DataType.Value(info["dtype"]))
                    for name, info in signature["inputs"].items()}
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name=self.model_name), metadata_field=["signature_def"]
        )
        response = self._call(self._stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        signature = signatures.signature_def[self.signature_name]
        return {name: tf.as_dtype(info.dtype) for name, info in signature.inputs.items()}

    def _rest_predict(self, request, version):
        inputs = {
            name: [v.decode() if isinstance(v, bytes) else v
                   for v in tf.make_ndarray(proto).tolist()]
            for name, proto in request.inputs.items()
        }
        path = f"/v1/models/{self.model_name}"
        if version is not None:
            path += f"/versions/{int(version)}"
        body = self._http("POST", path + ":predict",
                          {"signature_name": self.signature_name, "inputs": inputs})
        outputs = body["outputs"]
        if not isinstance(outputs, dict):  # a single output comes bare
            outputs = {"output": outputs}
        return {name: np.asarray(values, dtype=np.float32) for name, values in outputs.items()}

    def _http(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.target.rstrip("/") + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            if error.code == 404:
                raise ServingError(
                    f"The server at {self.target} has no model {self.model_name!r}: {detail}") from None
            detail = name_inputs(detail, sorted(self._specs or {}), self.names)
            raise ServingError(f"{self.target} answered HTTP {error.code}: {detail}") from None
        except (socket.timeout, TimeoutError):
            raise ServingError(f"{self.target} did not answer within {self.timeout:g} s") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, (socket.timeout, TimeoutError)):
                raise ServingError(f"{self.target} did not answer within {self.timeout:g} s") from None
            raise ServingError(f"No server answers at {self.target}: {error.reason}") from None
