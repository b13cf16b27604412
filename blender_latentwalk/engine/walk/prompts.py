"""The prompt schedule: which prompt (or blend of prompts) each frame is rendered with.

In Blender a change of prompt is a timeline marker named ``prompt: a city at night``.
The prompt before the first marker is the base prompt. At each marker the new prompt
fades in over ``blend_ms`` (0: it takes over on the marker's frame); the renderer
blends the prompts' text embeddings with these weights, so the image morphs across a
change instead of cutting.
"""

import numpy as np

MARKER_PREFIX = "prompt:"


def marker_prompt(marker_name):
    """The prompt text of a marker named ``prompt: TEXT``, else None."""
    if not marker_name.lower().startswith(MARKER_PREFIX):
        return None
    return marker_name[len(MARKER_PREFIX):].strip()


def schedule(base_prompt, changes, frame_start, n_frames, fps, fps_base=1.0, blend_ms=500.0):
    """Per-frame prompt weights.

    Parameters
    ----------
    base_prompt : str, the prompt before the first change
    changes : list of (frame, text), Blender frame numbers of prompt changes (any order)
    frame_start : int, the Blender frame of plan index 0
    n_frames : int
    fps, fps_base : float, the scene's frame rate (fps / fps_base frames a second)
    blend_ms : float, how long a new prompt takes to fade in, in ms

    Returns
    -------
    prompts : list of str, length n_prompts (each distinct text once)
    weights : np.ndarray, shape (n_frames, n_prompts), float32, rows sum to 1
    """
    prompts = [base_prompt]
    ordered = sorted(changes, key=lambda change: change[0])
    for _, text in ordered:
        if text not in prompts:
            prompts.append(text)
    frames = frame_start + np.arange(n_frames, dtype=np.float64)
    blend_frames = max(0.0, blend_ms) / 1000.0 * fps / fps_base
    weights = np.zeros((n_frames, len(prompts)), np.float64)
    weights[:, 0] = 1.0
    for change_frame, text in ordered:
        # 0 before the marker, then a linear ramp reaching 1 after blend_frames.
        ramp = np.clip((frames - change_frame + 1.0) / (blend_frames + 1.0), 0.0, 1.0)
        weights *= (1.0 - ramp)[:, None]
        weights[:, prompts.index(text)] += ramp
    return prompts, weights.astype(np.float32)
