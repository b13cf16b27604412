"""BigGAN-only rendering of a plan: the preview, and the source frames of the full render."""

from . import biggan, frames, walk


def render_biggan(plan, model_spec, out_folder, frame_indices=None, batch_size=None, device="auto",
                  size=None, progress=None):
    """Render plan frames with BigGAN into ``out_folder``; returns the written paths.

    frame_indices : plan indices to render (default: all); the walk is computed for
        the whole plan, so a frame is the same whether rendered alone or with others.
    batch_size : frames per BigGAN call; default 4 on the CPU (cache-friendly), 64 on a GPU.
    size : optional (width, height) to scale the frames to.
    progress : optional callable(done, total).
    """
    frames.ensure_writable_folder(out_folder)
    model, device, dtype = model_spec if isinstance(model_spec, tuple) else biggan.load(model_spec, device)
    if batch_size is None:
        batch_size = 4 if device.type == "cpu" else 64
    z = walk.noise_vectors(plan)
    classes = walk.class_vectors(plan)
    truncation = walk.truncations(plan)
    indices = list(range(plan.n_frames)) if frame_indices is None else [int(i) for i in frame_indices]
    written = []
    for index, image in biggan.generate(model, device, dtype, z, classes, truncation, indices, batch_size):
        path = frames.frame_path(out_folder, plan.frame_start + index)
        frames.write_png(path, image, size)
        written.append(path)
        if progress is not None:
            progress(len(written), len(indices))
    return sorted(written)
