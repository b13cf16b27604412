"""What the benchmarks share."""

import time


def timed(function, device, *args):
    """(function(*args), seconds), waiting for a GPU's queued work on both sides."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = function(*args)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start
