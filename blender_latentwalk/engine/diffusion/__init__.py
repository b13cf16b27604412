"""Diffusion: Stable Diffusion img2img over the generator's frames (diffusers).

May import: imaging.
"""
