"""Generators: latents in, source frames out.

Owns BigGAN (`biggan`: resolving a model name or folder, loading weights, generating batches of
8-bit frames on the device). A second generator goes beside it; today the render asks for
BigGAN by name in `render/compute.py` (`Models`), `walk/latents.py` (`generator_inputs`) and the
frame key (`render/trust.py`).

May import: imaging.
"""
