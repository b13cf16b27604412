"""Pixels on the device: scaling, cropping and 8-bit rounding exactly as Pillow does them.

Shared by the generators (their frames to the output size) and diffusion (sizes in multiples of 8).

May import: nothing else.
"""
