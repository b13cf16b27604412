"""The prompt schedule: which prompt (or blend of prompts) each frame is rendered with.

In Blender a change of prompt is a timeline marker named ``prompt: a city at night``.
The prompt before the first marker is the base prompt. At each marker the new prompt
fades in over ``blend_ms`` (0: it takes over on the marker's frame); the renderer
blends the prompts' text embeddings with these weights, so the image morphs across a
change instead of cutting.

The song's structure is timeline markers too: ``section: A`` where a section starts (sections
that sound alike share a letter) and ``drop`` on a drop. A section's *look* (its prompt, its
walk seed) applies from its marker to the next section marker: `section_prompt_changes` turns
the section markers into prompt changes, `section_seeds` into a seed per frame.
"""

import numpy as np

MARKER_PREFIX = "prompt:"
SECTION_PREFIX = "section:"
DROP_MARKER_NAME = "drop"


def marker_prompt(marker_name):
    """The prompt text of a marker named ``prompt: TEXT``, else None."""
    if not marker_name.lower().startswith(MARKER_PREFIX):
        return None
    return marker_name[len(MARKER_PREFIX):].strip()


def marker_section(marker_name):
    """The section label of a marker named ``section: A`` (prefix in any case, spaces around the label
    ignored), else None (an empty label too: ``section:`` names no section)."""
    if not marker_name.lower().startswith(SECTION_PREFIX):
        return None
    return marker_name[len(SECTION_PREFIX):].strip() or None


def section_marker_name(label):
    """The name of the marker of a section labelled ``label``: ``section: A``."""
    return f"{SECTION_PREFIX} {label}"


def is_drop_marker(marker_name):
    """True for a marker named ``drop`` (any case, spaces around ignored)."""
    return marker_name.strip().lower() == DROP_MARKER_NAME


def is_structure_marker(marker_name):
    """True for the markers a bake places for the song's structure: ``section: X`` and ``drop``."""
    return marker_section(marker_name) is not None or is_drop_marker(marker_name)


def section_prompt_changes(sections, look_prompts, base_prompt):
    """Prompt changes made by section markers.

    Parameters
    ----------
    sections : list of (frame, label), the ``section: X`` markers (any order)
    look_prompts : dict, label -> prompt text ("" or absent: the section has no prompt of its own)
    base_prompt : str, the prompt before the first change

    Returns
    -------
    changes : list of (frame, text), for `schedule`: each section whose look has a prompt switches to it at
        its marker; while any look has a prompt, a section whose look has none switches back to
        ``base_prompt``. Empty when no look has a prompt (section markers then change nothing).
    """
    prompts = {label: text.strip() for label, text in look_prompts.items() if text and text.strip()}
    if not prompts:
        return []
    return [(frame, prompts.get(label, base_prompt)) for frame, label in sorted(sections, key=lambda s: s[0])]


def section_seeds(sections, look_seeds, base_seed, frame_start, n_frames):
    """The walk's seed on every frame: a section's own seed from its marker to the next section marker.

    Parameters
    ----------
    sections : list of (frame, label), the ``section: X`` markers (any order; at one frame the last wins)
    look_seeds : dict, label -> seed, for the looks that have a seed of their own
    base_seed : int, the seed elsewhere (before the first marker, and in sections without their own)
    frame_start : int, the Blender frame of index 0
    n_frames : int

    Returns
    -------
    seeds : np.ndarray, shape (n_frames,), int64
    """
    seeds = np.full(n_frames, int(base_seed), np.int64)
    frames = frame_start + np.arange(n_frames)
    for frame, label in sorted(sections, key=lambda s: s[0]):
        seeds[frames >= frame] = int(look_seeds.get(label, base_seed))
    return seeds


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
