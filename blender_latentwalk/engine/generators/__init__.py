"""Generators: latents in, source frames out.

Owns BigGAN (`biggan`: resolving a model name or folder, loading weights, generating batches of
8-bit frames on the device), and the first part of StyleGAN: `stylegan_files` reads NVIDIA's
StyleGAN2-ADA / StyleGAN3 ``.pkl`` files and rosinality ``.pt`` checkpoints as data, never running
code inside them (issue 20: the networks and the walk in StyleGAN's terms are still to come). Today
the render asks for BigGAN by name in `render/compute.py` (`Models`), `walk/latents.py`
(`generator_inputs`) and the frame key (`render/trust.py`).

May import: imaging.
"""
