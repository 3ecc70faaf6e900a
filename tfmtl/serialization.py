"""One registration decorator for every serialisable tfmtl object."""

import keras

PACKAGE = "tfmtl"


def register(cls):
    """Registers `cls` with Keras under the `tfmtl` package name.

    Registered classes reload from `.keras` files without `custom_objects`
    once `tfmtl` is imported.
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
