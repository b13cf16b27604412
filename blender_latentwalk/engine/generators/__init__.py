"""Generators: latents in, source frames out.

Owns BigGAN (`biggan`: resolving a model name or folder, loading weights, generating batches of
8-bit frames on the device). A second generator (StyleGAN) lives beside it.

May import: imaging.
"""
