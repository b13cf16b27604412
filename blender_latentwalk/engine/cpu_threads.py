"""How the engine's processes use the CPU's threads: read as torch loads, so set before it is imported."""

import os

# PyTorch's OpenMP threads sleep when they run out of work instead of spinning for it. On a CPU shared with
# other work (another render, Blender, a farm's other jobs) spinning threads took the cores from the threads
# with work: BigGAN-only at 128x128 on 2 busy cores went from 0.97x to 2.36x a plain batch-30 loop's rate,
# 0.63 -> 0.25 CPU s a frame (scripts/bench_cpu_load.py). The frames' bytes do not change.
ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}


def apply():
    """Set the variables of ENVIRONMENT that are not set already (a user's own value wins)."""
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)
