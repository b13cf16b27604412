"""Pixels on the device: scaling, cropping and 8-bit rounding exactly as Pillow does them.

Shared by the generators (their frames to the output size) and diffusion (sizes in multiples of 8).

Naming, here and in generators/, diffusion/ and render/: ``images`` are torch tensors
(n, 3, height, width), float32 holding whole 8-bit values 0..255, on the device; ``pixels`` are
uint8 values (height, width, 3) (`resize.to_pixels`), copied to the CPU for the PNG writer.

May import: nothing else.
"""
