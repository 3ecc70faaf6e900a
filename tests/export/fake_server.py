"""A stand-in for tensorflow_model_server: gRPC and REST over a SavedModel.

It decodes requests the way TF Serving does (tensor protos to tensors),
runs the named signature of the loaded SavedModel, and encodes the outputs.
It serves one model name; any other name is NOT_FOUND. `delay` seconds of
sleep per request let tests provoke client timeouts.
"""

import concurrent.futures
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)


class FakeServing(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, name, version_dir, delay=0.0):
        self.name = name
        self.loaded = tf.saved_model.load(version_dir)
        meta = saved_model_pb2.SavedModel()
        with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
            meta.ParseFromString(f.read())
        self.signature_defs = meta.meta_graphs[0].signature_def
        self.delay = delay

    def run(self, signature_name, inputs):
        fn = self.loaded.signatures[signature_name or "serving_default"]
        return {k: v.numpy() for k, v in fn(**inputs).items()}

    # gRPC
    def Predict(self, request, context):
        time.sleep(self.delay)
        if request.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({request.model_spec.name})")
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        response = predict_pb2.PredictResponse()
        for key, value in self.run(request.model_spec.signature_name, inputs).items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):
        if request.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.metadata["signature_def"].Pack(signatures)
        return response


def start_grpc(servicer):
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def start_rest(servicer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _model(self):
            path = self.path.split(":")[0]
            parts = path.strip("/").split("/")
            return parts[2] if len(parts) > 2 else None

        def do_GET(self):
            if self._model() != servicer.name:
                return self._send(404, {"error": "Servable not found"})
            signature = servicer.signature_defs["serving_default"]
            inputs = {k: {"dtype": types_pb2.DataType.Name(v.dtype)}
                      for k, v in signature.inputs.items()}
            self._send(200, {"metadata": {"signature_def": {"signature_def": {
                "serving_default": {"inputs": inputs}}}}})

        def do_POST(self):
            time.sleep(servicer.delay)
            if self._model() != servicer.name:
                return self._send(404, {"error": "Servable not found"})
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            specs = servicer.loaded.signatures[body.get("signature_name", "serving_default")]
            specs = specs.structured_input_signature[1]
            inputs = {k: tf.constant(np.asarray(v, dtype=specs[k].dtype.as_numpy_dtype
                                                 if specs[k].dtype != tf.string else object),
                                     dtype=specs[k].dtype)
                      for k, v in body["inputs"].items()}
            outputs = servicer.run(body.get("signature_name"), inputs)
            self._send(200, {"outputs": {k: v.tolist() for k, v in outputs.items()}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
