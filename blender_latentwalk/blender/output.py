"""Where a render writes and at what size: its frames folder, the frame size, the video's path.

Folders are Blender path properties: ``//`` is relative to the .blend, and ``{blend_name}`` /
``{scene_name}`` (Blender 5.0's path-template names, understood here in every version) are the
.blend's and the scene's names, so two files in one folder, or two scenes in one file, never
share frames.

A Save As (a new version of the .blend: song_v01 -> song_v02) moves such a folder with the file's name
or place; the frames already rendered come along (`carry_frames`, on save): hard links where the
file system has them, so the new folder costs no space and no render, and each file still owns its
frames (a render replaces a frame by renaming a new file over it, never by writing into the shared one).
"""

import os
import shutil

import bpy

from ..engine.errors import LatentWalkError
from ..engine.render.png_writer import frame_path
from . import compat

PLAN_FILE_NAME = "plan.npz"  # the render's plan, written into its frames folder
BLEND_NAME_TOKEN, SCENE_NAME_TOKEN = "{blend_name}", "{scene_name}"


def resolve_folder(path, what, scene, blend_path=None):
    """An absolute folder from a Blender path property (``what`` names it in the error when the
    path needs a saved .blend); ``blend_path``: as the .blend saved there would resolve it (default:
    the .blend as it is)."""
    blend_path = bpy.data.filepath if blend_path is None else blend_path
    if (path.startswith("//") or BLEND_NAME_TOKEN in path) and not blend_path:
        raise LatentWalkError(f"the {what} '{path}' depends on the .blend file: save the .blend first, "
                              "or choose an absolute folder.")
    blend_name = os.path.splitext(os.path.basename(blend_path))[0]
    path = path.replace(BLEND_NAME_TOKEN, blend_name).replace(SCENE_NAME_TOKEN, bpy.path.clean_name(scene.name))
    return os.path.abspath(bpy.path.abspath(path, start=os.path.dirname(blend_path) or None))


def output_size(scene):
    """(width, height) of final frames: the scene's render size, made even for H.264."""
    render = scene.render
    scale = render.resolution_percentage / 100.0
    return (max(8, int(render.resolution_x * scale) // 2 * 2), max(8, int(render.resolution_y * scale) // 2 * 2))


def preview_size(scene):
    """(width, height) of preview frames: Preview Width wide, the render's aspect."""
    render = scene.render
    aspect = (render.resolution_y * render.pixel_aspect_y) / (render.resolution_x * render.pixel_aspect_x)
    width = scene.latentwalk.walk.preview_width
    return width, max(2, int(round(width * aspect / 2)) * 2)


def render_request(scene, preview):
    """(folder, what the worker is asked to render with) from the scene's settings.

    The second is {"generator": name, "img2img": {"model", "width", "height", "tiny_vae"}}.
    Refuses a Preview Folder that is the Output folder: previews would replace finished frames.
    """
    settings = scene.latentwalk
    walk, diffusion = settings.walk, settings.diffusion
    folders = {}
    for name, path, what in (("preview", walk.preview_folder, "Preview Folder"),
                             ("output", diffusion.output_folder, "Output folder")):
        try:
            folders[name] = resolve_folder(path, what, scene)
        except LatentWalkError:
            if name == ("preview" if preview else "output"):
                raise  # the folder this render writes
            folders[name] = None  # cannot hold frames yet, so cannot clash with the other
    preview_folder, output_folder = folders["preview"], folders["output"]
    same = None not in (preview_folder, output_folder) and _same_folder(preview_folder, output_folder)
    if same:
        raise LatentWalkError(f"the Preview Folder and the Output folder are the same ('{preview_folder}'): "
                              "previews would replace the rendered frames. Choose another Preview Folder.")
    if preview:
        folder, size = preview_folder, preview_size(scene)
        sd_model, tiny_vae = "none", ""
    else:
        folder, size = output_folder, output_size(scene)
        sd_model, tiny_vae = model_name(diffusion.model) or "none", model_name(diffusion.tiny_vae)
    return folder, {"generator": model_name(walk.model), "img2img": {"model": sd_model, "width": size[0],
                                                                   "height": size[1], "tiny_vae": tiny_vae}}


def _same_folder(path_a, path_b):
    """Whether two folder paths are one folder: the same files (a link, another spelling of the path), or the
    same place once links are resolved for folders not made yet."""
    try:
        if os.path.samefile(path_a, path_b):
            return True
    except OSError:  # one is not there yet
        pass
    return os.path.normcase(os.path.realpath(path_a)) == os.path.normcase(os.path.realpath(path_b))


def relative_to_blend(path):
    """``path`` as a "//" path relative to the saved .blend (as Blender's file browsers store one with Relative
    Path ticked); as it is when the file is unsaved or on another drive (Windows)."""
    if not bpy.data.filepath:
        return path
    try:
        return bpy.path.relpath(path)
    except ValueError:  # another drive: keep it absolute
        return path


def model_name(value):
    """A model field's value as the engine takes it: a name or hub id as typed, a folder picked with the
    field's browse button as an absolute path (a "//" path is relative to the .blend file)."""
    value = value.strip()
    if value.startswith("//"):
        return os.path.normpath(bpy.path.abspath(value))
    return value


def video_path(scene):
    """Where Encode Video writes: next to the frames, named after the .blend."""
    folder = resolve_folder(scene.latentwalk.diffusion.output_folder, "Output folder", scene)
    name = os.path.splitext(os.path.basename(bpy.data.filepath))[0] or "latentwalk"
    return os.path.join(folder, f"{name}.mp4")


# Frames carried over on Save As

def carry_frames(before, after):
    """After the .blend ``before`` was saved as ``after`` (Save As, Save Incremental, a Save Copy): every scene's
    Output folder and Preview Folder that resolves to another folder under the new name or place, while the
    old one holds this scene's rendered frames (its manifest: the folder is the old file's, named after it
    and the scene), gets them there, so the new file needs no re-render of what nothing changed.

    Hard links (the same files, no space; a render replaces a frame by renaming a new file over its name, so
    neither file's frames change with the other's renders), copies where the file system has no links. The
    manifest's files come along as they are, read before the frames: a frame changed meanwhile no longer
    matches its record and counts as stale, never as current. A new folder that has frames of its own is
    left as it is. Returns the lines to tell the artist (none when nothing moved: a first save, a save
    under the same name).
    """
    lines = []
    if not before or not after:
        return lines
    copy = not _same_folder(after, bpy.data.filepath)  # Save Copy (4.2+ tell its path): the open file stays
    said = f"Save Copy {os.path.basename(after)}: the copy's" if copy else f"Save As {os.path.basename(after)}: the"
    for scene in bpy.data.scenes:
        settings = scene.latentwalk
        for path, what in ((settings.diffusion.output_folder, "Output folder"),
                           (settings.walk.preview_folder, "Preview Folder")):
            try:
                old, new = (resolve_folder(path, what, scene, blend) for blend in (before, after))
            except LatentWalkError:
                continue
            if not _same_folder(old, new):
                line = _carry(old, new)
                if line:
                    lines.append(f"{said} {what} of scene '{scene.name}' is now '{new}'; {line}")
    return lines


def _carry(old, new):
    """Link (else copy) the frames the manifest of ``old`` records, and the manifest's files as they are, into
    ``new``; one phrase saying what was done, or "" when ``old`` holds no frames."""
    from ..engine import atomic
    from ..engine.render import trust

    manifest_files = {}
    for name in (trust.MANIFEST_NAME, trust.JOURNAL_NAME):  # the snapshot, then the changes since
        try:
            with open(os.path.join(old, name), "rb") as stream:
                manifest_files[name] = stream.read()  # before the frames (see `carry_frames`)
        except OSError:
            pass
    try:
        numbers = sorted(trust.load_manifest(old)) if manifest_files else []
    except LatentWalkError:  # a manifest this version cannot read: nothing it could call current
        numbers = []
    if not numbers:
        return ""
    if any(os.path.exists(os.path.join(new, name)) for name in (trust.MANIFEST_NAME, trust.JOURNAL_NAME)) \
            or _holds_frames(new):
        return f"it has frames of its own, left as they are (those of the old file stay in '{old}')"
    linked = copied = 0
    try:
        os.makedirs(new, exist_ok=True)
        for number in numbers:
            source, target = frame_path(old, number), frame_path(new, number)
            if not os.path.isfile(source):
                continue
            try:
                os.link(source, target)
                linked += 1
            except OSError:  # no hard links here (FAT, another drive): the bytes, with their time
                shutil.copy2(source, target)
                copied += 1
        for name, data in manifest_files.items():  # as they were: the records name no folder
            atomic.write_bytes(os.path.join(new, name), data)
    except OSError as error:
        return (f"its frames could not be brought over from '{old}' ({error.strerror}): point it at that folder "
                "to use them, or render again")
    how = "linked" if not copied else "copied" if not linked else "linked or copied"
    return f"its {linked + copied} rendered frames were {how} there from '{old}': nothing to render again"


def _holds_frames(folder):
    try:
        return any(name.startswith("frame_") and name.endswith(".png") for name in os.listdir(folder))
    except OSError:
        return False


_save = {"from": None}  # the .blend's path when a save began


@bpy.app.handlers.persistent
def _note_path_before_save(*_args):
    _save["from"] = bpy.data.filepath


@bpy.app.handlers.persistent
def _carry_frames_after_save(*args):
    before, _save["from"] = _save["from"], None
    try:
        lines = carry_frames(before, compat.saved_blend_path(args))
    except Exception as error:  # noqa: BLE001  (the file is saved: a failure here must not look like the save's)
        lines = [f"the frames could not be brought over to the new file's folders ({error})"]
    for line in lines:
        print(f"Latent Walk: {line}", flush=True)


def register():
    bpy.app.handlers.save_pre.append(_note_path_before_save)
    bpy.app.handlers.save_post.append(_carry_frames_after_save)


def unregister():
    for handlers, handler in ((bpy.app.handlers.save_pre, _note_path_before_save),
                              (bpy.app.handlers.save_post, _carry_frames_after_save)):
        if handler in handlers:
            handlers.remove(handler)
