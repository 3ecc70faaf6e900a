"""One registration decorator for every serialisable tfmtl object, and JSON files for plain records."""

import dataclasses
import json

import keras

PACKAGE = "tfmtl"


def register(cls):
    """Registers `cls` with Keras under the `tfmtl` package name.

    Registered classes reload from `.keras` files without `custom_objects`
    once `tfmtl` is imported.
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


class JsonRecord:
    """`to_json` / `from_json` / `save` / `load` for a dataclass of plain values
    (a MultiSFS `Selection`, an AutoMTL `Architecture`)."""

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text):
        return cls(**json.loads(text))

    def save(self, path):
        with open(path, "w") as out:
            out.write(self.to_json())

    @classmethod
    def load(cls, path):
        with open(path) as file:
            return cls.from_json(file.read())
