"""The render: a plan in, PNG files out, and which of them are current.

Owns the render loop (`run`), the trust core (frame keys, the manifest, frame status and claims on
a folder), the bounded PNG writer (`png_writer`) and frame-range text (`frame_ranges`).

May import: walk, imaging, generators, diffusion.
"""
