"""Where a render writes and at what size: its frames folder, the frame size, the video's path.

Folders are Blender path properties: ``//`` is relative to the .blend, and ``{blend_name}`` /
``{scene_name}`` (Blender 5.0's path-template names, understood here in every version) are the
.blend's and the scene's names, so two files in one folder, or two scenes in one file, never
share frames.
"""

import os

import bpy

from ..engine.errors import LatentWalkError

PLAN_FILE_NAME = "plan.npz"  # the render's plan, written into its frames folder
BLEND_NAME_TOKEN, SCENE_NAME_TOKEN = "{blend_name}", "{scene_name}"


def resolve_folder(path, what, scene):
    """An absolute folder from a Blender path property (``what`` names it in the error when the
    path needs a saved .blend)."""
    if (path.startswith("//") or BLEND_NAME_TOKEN in path) and not bpy.data.filepath:
        raise LatentWalkError(f"the {what} '{path}' depends on the .blend file: save the .blend first, "
                              "or choose an absolute folder.")
    blend_name = os.path.splitext(os.path.basename(bpy.data.filepath))[0]
    path = path.replace(BLEND_NAME_TOKEN, blend_name).replace(SCENE_NAME_TOKEN, bpy.path.clean_name(scene.name))
    return os.path.abspath(bpy.path.abspath(path))


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
