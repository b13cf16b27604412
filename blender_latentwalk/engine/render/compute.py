"""The device side of a render: models loaded and kept, aligned batches computed, frames copied back.

`batch_renderer` loads the models (through a `Models` cache the worker keeps between renders) and
returns a `BatchRenderer`, whose `compute` runs the generator (BigGAN or StyleGAN, through
generators/interface.py) and img2img on one aligned batch and leaves
the frames on the device; `HostCopy` brings them to the CPU as 8-bit pixels without holding up the
next batch. `is_out_of_memory` and `free_device_memory` let the render loop retry at a smaller batch;
`device_kind`, `precision_name` and `cpu_threads` are what a render contract records and sets.
"""

import contextlib

from ..diffusion import img2img
from ..generators.selection import as_generator
from ..imaging import resize
from . import trust


class Models:
    """Loaded models, kept between renders: the worker holds one for its lifetime, so
    a second render starts at once; ending the worker releases the memory. Only the
    latest model of each kind is kept."""

    def __init__(self):
        self._generator = (None, None)
        self._pipeline = (None, None)

    def generator(self, generator, device, identity):
        """The `interface.Loaded` model of ``generator`` (a `interface.Generator`) on ``device`` ("auto", "cpu", ...).

        identity : `model_identity.model_identity` of its model; weights replaced in the folder or file load again.
        """
        key = (generator.family, identity, device)
        if self._generator[0] != key:
            self._generator = (None, None)  # free the old one before loading the next
            self._generator = (key, generator.load(device))
        return self._generator[1]

    def pipeline(self, name, tiny_vae, torch_device, dtype, identities):
        """The img2img pipeline; identities : (`model_identity.model_identity` of name, of tiny_vae)."""
        key = (*identities, str(torch_device), str(dtype))
        if self._pipeline[0] != key:
            self._pipeline = (None, None)
            self._pipeline = (key, img2img.load(name, torch_device, dtype, tiny_vae or None))
        return self._pipeline[1]


def diffusion_groups(plan, members):
    """Split a batch into pipeline calls: frames that share steps, effective steps and guidance.

    Returns a list of ((steps, effective_steps, guidance), [plan indices]), in frame order.
    """
    calls = {}
    for index in members:
        steps = int(round(plan.steps[index]))
        guidance = float(plan.guidance[index])
        key = (steps, img2img.effective_steps(steps, float(plan.strength[index])), guidance if guidance > 1 else 0.0)
        calls.setdefault(key, []).append(index)
    return list(calls.items())


def device_kind(torch_device):
    """What a render contract records of a device: "cuda:<GPU name>" (two GPUs of one model are one kind),
    "cpu (AVX2, <CPU model>)" (the vector instructions PyTorch's CPU kernels dispatch to, and the model),
    else its type ("mps")."""
    import torch

    if torch_device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(torch_device)}"
    if torch_device.type == "cpu":  # MKL and oneDNN pick kernels by the CPU model too, not by the ISA alone
        capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
        parts = [capability()] if capability is not None else []
        return f"cpu ({', '.join(parts + [cpu_model()])})"
    return torch_device.type


def cpu_model():
    """The CPU's model name ("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"), or the machine type."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def precision_name(dtype):
    """"float32" for torch.float32: the precision as a render contract records it."""
    return str(dtype).replace("torch.", "")


@contextlib.contextmanager
def cpu_threads(count):
    """PyTorch's CPU threads (per process) set to ``count`` for the block, then put back (None: left as they are)."""
    import torch

    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def is_out_of_memory(error):
    """Whether ``error`` is a device (or host) running out of memory during a batch."""
    import torch

    kinds = tuple(kind for kind in (getattr(torch, "OutOfMemoryError", None),
                                    getattr(torch.cuda, "OutOfMemoryError", None)) if kind is not None)
    return isinstance(error, kinds + (MemoryError,)) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def free_device_memory(torch_device):
    """Give back what a failed batch held, so a smaller batch can run (an out-of-memory retry)."""
    import gc

    import torch

    gc.collect()
    if torch_device.type == "cuda":
        torch.cuda.empty_cache()
    elif torch_device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


class BatchRenderer:
    """Computes the frames of one aligned batch on the device (the models are loaded)."""

    def __init__(self, plan, settings, generator, inputs, loaded, pipeline, embeddings):
        self.plan, self.settings, self.generator, self.inputs = plan, settings, generator, inputs
        self.loaded, self.torch_device, self.dtype = loaded, loaded.torch_device, loaded.dtype
        self.pipeline, self.embeddings = pipeline, embeddings

    def compute(self, batch, wanted):
        """Images (len(wanted), 3, height, width) on the device of ``wanted`` (sorted), computed as
        members of ``batch``: float32 holding the frames' 8-bit values.

        batch : plan indices of the whole aligned batch; wanted : the subset to return.
        Generator and img2img calls are formed from the whole batch, exactly as when every
        frame of it is rendered; a call with no wanted frame is skipped (its result
        would be thrown away), and every other call runs with all its members. Nothing
        leaves the device, and this code never waits for it (diffusers itself still does, a few times
        a call: see docs/performance.md).
        """
        import torch

        plan, wanted = self.plan, sorted(wanted)
        calls = []
        if self.pipeline is not None:
            calls = [(values, call) for values, call in diffusion_groups(plan, batch)
                     if values[1] > 0 and set(wanted).intersection(call)]
        needed = set(wanted).union(*[call for _, call in calls])
        size = (self.settings.width, self.settings.height)
        images = {}
        with torch.inference_mode():
            for members, generated in self.generator.generate(self.loaded, self.inputs, plan, batch, needed):
                # Every member, needed or not: the same matrix shapes (and roundings) whichever frames
                # of the batch are asked for, so a resume gives the bytes of one whole render.
                fitted = resize.apply(generated, resize.fit_resizes(generated.shape[:-3:-1], size))
                images.update((index, fitted[position]) for position, index in enumerate(members) if index in needed)
            for (steps, effective, guidance), call in calls:
                outputs = img2img.run(
                    self.pipeline, torch.stack([images[i] for i in call]),
                    [self.embeddings.blend(plan.frame_prompts(i), guidance > 1) for i in call],
                    img2img.pipeline_strength(steps, effective), guidance, steps,
                    [int(round(plan.noise_seed[i])) for i in call], self.torch_device,
                )
                images.update(zip(call, outputs))
            return torch.stack([images[i] for i in wanted])


def batch_renderer(plan, generator, settings, device="auto", models=None, inputs=None, identities=None):
    """The models loaded (through ``models``, a `Models`) and ready to compute the plan's aligned batches:
    what the render loop drives, and what the benchmark times without writing any file.

    generator : an `interface.Generator`, or its model's name, folder or file."""
    generator = as_generator(generator)
    inputs = inputs if inputs is not None else generator.inputs(plan)
    identities = identities if identities is not None else trust.model_identities(generator.model, settings)
    models = models if models is not None else Models()
    loaded = models.generator(generator, device, identities["generator"])
    pipeline, embeddings = None, None
    if trust.uses_diffusion(settings):
        # img2img runs at the generator's precision on its device (BigGAN: fp16 on a GPU).
        pipeline = models.pipeline(settings.model, settings.tiny_vae, loaded.torch_device, _pipeline_dtype(loaded),
                                   (identities["model"], identities["tiny_vae"]))
        embeddings = img2img.PromptEmbeddings(pipeline, plan.settings["negative_prompt"], loaded.torch_device)
    return BatchRenderer(plan, settings, generator, inputs, loaded, pipeline, embeddings)


def _pipeline_dtype(loaded):
    """Stable Diffusion's dtype: fp16 on a GPU, fp32 on the CPU, whatever precision the generator runs at."""
    import torch

    return torch.float32 if loaded.torch_device.type == "cpu" else torch.float16


class HostCopy:
    """A batch's frames on their way to the CPU as 8-bit pixels. From a GPU the copy is queued behind
    the device's work into pinned memory, so the render loop goes on to queue the next batch; `pixels`
    (on a writer thread) waits for it."""

    def __init__(self, images):
        """images : (n, 3, height, width) on the device, from `BatchRenderer.compute`."""
        import torch

        pixels = resize.to_pixels(images)
        self.n_bytes = pixels.numel()
        self._ready = None
        if pixels.device.type == "cuda":
            self._host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
            self._host.copy_(pixels, non_blocking=True)
            self._ready = torch.cuda.Event()
            self._ready.record()
        else:
            self._host = pixels.cpu()

    def pixels(self):
        """np.ndarray (n, height, width, 3) uint8."""
        if self._ready is not None:
            self._ready.synchronize()
        return self._host.numpy()
