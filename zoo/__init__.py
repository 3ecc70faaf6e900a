"""The tfmtl model zoo: `zoo.build(name, schema, tasks, **hparams)`."""

import tfmtl  # noqa: F401  (sets the Keras backend before any model is built)
from zoo import aitm, automtl, esmm, fdn, mfh, single_task, stem, switcher_model  # noqa: F401  (fill the registry)
from zoo.presets import PRESETS
from zoo.registry import (PRECISIONS, build, builder, hparams, preset, register, sharing,
                          switcher_spec)
from zoo.registry import list_models as list  # noqa: A001
