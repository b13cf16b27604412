"""Generators: the walk's per-frame values in, source frames out.

`interface` says what the render asks of a generator and picks one for a model (`for_model`):
BigGAN (`biggan`: a model name or folder, loaded through pytorch-pretrained-biggan, batches of 8-bit
frames on the device) or StyleGAN2 / StyleGAN3 (`stylegan`: a model file; `stylegan_files` reads
NVIDIA's ``.pkl`` and rosinality ``.pt`` files as data, never running code inside them;
`stylegan2_network` and `stylegan3_network` are our own networks that load those weights).

May import: imaging, walk.
"""
