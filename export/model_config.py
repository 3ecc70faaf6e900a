"""`models.config` (ModelServerConfig) and batching parameters for TF Serving."""

import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2


def model_config(models, path, batching_path=None, max_batch_size=256, batch_timeout_micros=1000,
                 num_batch_threads=None, max_enqueued_batches=1000, allowed_batch_sizes=None):
    """Writes a `models.config` for `tensorflow_model_server --model_config_file`.

    Args:
        models: dict of model name to base path (the directory holding the
            integer versions), or a list of `(name, base_path)`.
        path: str. Where to write the text proto.
        batching_path: str or `None`. Also write a batching parameters file
            (for `--enable_batching --batching_parameters_file`), the usual
            setting for GPU serving where many small requests share a kernel.
        max_batch_size, batch_timeout_micros, num_batch_threads,
        max_enqueued_batches, allowed_batch_sizes: the batching parameters.

    Returns:
        The `ModelServerConfig` proto written.
    """
    items = list(models.items()) if isinstance(models, dict) else list(models)
    if not items:
        raise ValueError("model_config needs at least one (name, base_path).")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"Repeated model names: {names}")
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in items:
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = os.path.abspath(base_path)
        entry.model_platform = "tensorflow"
    with open(path, "w") as out:
        out.write(text_format.MessageToString(config))
    if batching_path:
        threads = num_batch_threads or os.cpu_count() or 4
        lines = [
            f"max_batch_size {{ value: {int(max_batch_size)} }}",
            f"batch_timeout_micros {{ value: {int(batch_timeout_micros)} }}",
            f"max_enqueued_batches {{ value: {int(max_enqueued_batches)} }}",
            f"num_batch_threads {{ value: {int(threads)} }}",
        ]
        for size in allowed_batch_sizes or ():
            lines.append(f"allowed_batch_sizes: {int(size)}")
        if allowed_batch_sizes and int(allowed_batch_sizes[-1]) != int(max_batch_size):
            raise ValueError("The last allowed batch size must equal max_batch_size.")
        with open(batching_path, "w") as out:
            out.write("\n".join(lines) + "\n")
    return config
