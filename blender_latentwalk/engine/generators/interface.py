"""What the render asks of a generator, whichever it is (BigGAN, StyleGAN2, StyleGAN3).

A `Generator` is made from the model the artist picked (`selection.for_model`): a BigGAN name or folder, or a
StyleGAN ``.pkl`` / ``.pt`` file. The render (render/run.py, render/compute.py, render/trust.py) only
uses this interface:

- ``inputs(plan)``: the per-frame walk values, a pure function of the plan (same plan, same values);
- ``key_settings(plan)`` and ``frame_bytes(inputs, index)``: what a frame key covers beside the
  model's identity, so a frame is re-rendered exactly when its pixels would change;
- ``load(device)``: the model on the device, as a `Loaded`;
- ``generate(loaded, inputs, plan, batch, needed)``: images of an aligned batch's frames on the device,
  computed in the same calls whichever frames of the batch are needed (a resume or a farm chunk
  gives the bytes of one whole render).
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass
class Loaded:
    """A generator's model on its device: the torch module, its torch device and dtype."""

    model: object
    torch_device: object
    dtype: object


@runtime_checkable
class Generator(Protocol):
    """The interface (see the module's docstring). ``model`` is the name, folder or file as the artist gave it;
    ``family`` ("biggan", "stylegan") names the generator in frame keys."""

    family: str
    model: str

    def inputs(self, plan):
        """The per-frame walk values of ``plan`` (a pure function of it)."""

    def key_settings(self, plan):
        """{name: JSON value} a frame key covers beside the model's identity and the frame's own inputs."""

    def frame_bytes(self, inputs, index):
        """bytes: what a frame key covers of plan index ``index``'s inputs."""

    def load(self, device="auto"):
        """The model on ``device`` ("auto", "cpu", "cuda", ...), as a `Loaded`."""

    def generate(self, loaded, inputs, plan, batch, needed):
        """Yields (members, images (len(members), 3, height, width) on the device, float32 holding 8-bit values)
        for the calls of the aligned ``batch`` (plan indices) that hold a frame of ``needed``."""
