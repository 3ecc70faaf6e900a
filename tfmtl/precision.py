"""Whether this machine runs bfloat16 in hardware, and the warning when it does not."""

import warnings


def warn_if_bfloat16_emulated(dtype, stacklevel=3):
    """Warns when `dtype` is `"mixed_bfloat16"` and `bfloat16_emulated()`."""
    if dtype == "mixed_bfloat16" and bfloat16_emulated():
        warnings.warn("dtype='mixed_bfloat16' on a CPU without AVX512-BF16 or AMX-BF16 and no "
                      "GPU: the bfloat16 products are emulated, slower than float32 (a "
                      "training step took 1.8-1.9x as long in bench/precision.py); keep "
                      "float32 here.",
                      stacklevel=stacklevel)


def bfloat16_emulated():
    """Whether this machine runs bfloat16 products without hardware for them: no GPU, and a
    CPU whose flags (Linux's /proc/cpuinfo) name neither AVX512-BF16 nor AMX-BF16."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return False
    flags = cpu_flags()
    return flags is not None and not flags & {"avx512_bf16", "amx_bf16"}


def cpu_flags():
    """The CPU's feature flags, or `None` where /proc/cpuinfo does not say (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return None
