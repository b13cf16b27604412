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

from dataclasses import dataclass, field


@dataclass
class Loaded:
    """A generator's model on its device. model : the torch module; extra : what the generator keeps besides."""

    model: object
    torch_device: object
    dtype: object
    extra: dict = field(default_factory=dict)


class Generator:
    """The interface (see the module's docstring); ``model`` is the name, folder or file as the artist gave it."""

    family = ""

    def __init__(self, model):
        self.model = model

    def inputs(self, plan):
        raise NotImplementedError(type(self).__name__)

    def key_settings(self, plan):
        raise NotImplementedError(type(self).__name__)

    def frame_bytes(self, inputs, index):
        raise NotImplementedError(type(self).__name__)

    def load(self, device="auto"):
        raise NotImplementedError(type(self).__name__)

    def generate(self, loaded, inputs, plan, batch, needed):
        raise NotImplementedError(type(self).__name__)

