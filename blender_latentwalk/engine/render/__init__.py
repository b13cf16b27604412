"""The render: a plan in, PNG files out, and which of them are current.

- `run`: `render()`, the loop (claim, skip current frames, compute and write batch by batch), its
  input `Img2ImgSettings` and its `RenderResult`.
- `trust`: the trust core: frame keys, the folder's manifest, frame status and claims, with their
  invariants at the top.
- `compute`: the device side: models loaded and kept (`Models`), aligned batches computed
  (`BatchRenderer`), frames copied back (`HostCopy`), out-of-memory detection.
- `png_writer`: frame file names and the bounded pool of threads that writes PNGs atomically.
- `frame_ranges`: frame lists as text (``1-3,5``), batch sizes and a farm's chunks.

May import: walk, imaging, generators, diffusion.
"""
