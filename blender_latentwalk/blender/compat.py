"""Every difference between Blender 3.4, 4.2 and 5.0 that the add-on meets.

Each helper detects the feature it needs (an attribute, an operator), never a
version number, so a point release that back- or forward-ports an API just works.

| what | old | new |
| F-curves of an ID | ``action.fcurves`` | slotted actions: channelbag of the ID's slot (4.4+, only way in 5.0) |
| sequencer strips | ``sequence_editor.sequences`` | ``sequence_editor.strips`` (4.4+, only way in 5.0) |
| Graph Editor sound bake | ``graph.sound_bake`` | ``graph.sound_to_samples`` (4.1+) |
| sidebar tab | not settable | ``Region.active_panel_category`` |
| ``//`` paths in properties | always accepted | ``options={'PATH_SUPPORTS_BLEND_RELATIVE'}`` (5.0) |
| F-curve Noise modifier | legacy noise only | ``use_legacy_noise`` option (5.0 has it) |
| add-on's own data folder | ``user_resource('DATAFILES')`` | ``utils.extension_path_user`` (4.2+ extensions) |
| Blender's Python | ``app.binary_path_python`` (until 2.9x) | ``sys.executable`` (2.91+) |
| save handlers' arguments | ``(None, None)``: the path is not given (3.4) | ``(filepath, None)``: the file written (4.2, 5.0) |
"""

import contextlib
import os
import sys

import bpy


def _channelbag(animation_data, ensure):
    """The channelbag holding the F-curves of the assigned slot (slotted actions)."""
    from bpy_extras import anim_utils

    action, slot = animation_data.action, animation_data.action_slot
    if slot is None:
        return None
    if ensure:
        return anim_utils.action_ensure_channelbag_for_slot(action, slot)
    return anim_utils.action_get_channelbag_for_slot(action, slot)


def fcurves_of(id_data):
    """The F-curve collection animating ``id_data``, or None when it has no action."""
    animation_data = id_data.animation_data
    if animation_data is None or animation_data.action is None:
        return None
    if hasattr(animation_data, "action_slot"):
        bag = _channelbag(animation_data, ensure=False)
        return bag.fcurves if bag is not None else None
    return animation_data.action.fcurves


def find_fcurve(id_data, data_path, index=0):
    fcurves = fcurves_of(id_data)
    return fcurves.find(data_path, index=index) if fcurves is not None else None


def ensure_fcurve(id_data, data_path, index, group_name):
    """The F-curve for ``data_path[index]``, created (in ``group_name``) if missing.

    Creation goes through one ``keyframe_insert``: it makes the action, slot,
    layer, strip and channelbag that each Blender version needs. The caller
    replaces that single key with the baked ones.
    """
    fcurve = find_fcurve(id_data, data_path, index)
    if fcurve is None:
        try:
            id_data.keyframe_insert(data_path, index=index, group=group_name)
        except TypeError:  # not an array property: keyframe_insert wants index -1
            id_data.keyframe_insert(data_path, index=-1, group=group_name)
        fcurve = find_fcurve(id_data, data_path, index)
    return fcurve


def remove_fcurve(id_data, fcurve):
    fcurves_of(id_data).remove(fcurve)


def fcurve_collections(id_data):
    """Every F-curve collection animating ``id_data``: its action's and its NLA strips' (each once)."""
    animation_data = id_data.animation_data
    if animation_data is None:
        return []
    slotted = hasattr(animation_data, "action_slot")
    pairs = [(animation_data.action, getattr(animation_data, "action_slot", None))]
    for track in animation_data.nla_tracks:
        pairs += [(strip.action, getattr(strip, "action_slot", None)) for strip in track.strips]
    found, seen = [], set()
    for action, slot in pairs:
        if action is None or (action.as_pointer(), slot and slot.handle) in seen:
            continue
        seen.add((action.as_pointer(), slot and slot.handle))
        if slotted:
            from bpy_extras import anim_utils

            bag = anim_utils.action_get_channelbag_for_slot(action, slot) if slot is not None else None
            if bag is not None:
                found.append(bag.fcurves)
        else:
            found.append(action.fcurves)
    return found


def is_legacy_noise(noise_modifier):
    """True for Blender's legacy F-curve noise (the only kind in 4.2 and before; an option in 5.0), whose
    Scale also scales its Phase and depth coordinates, so no change of Scale stretches it exactly in time."""
    return getattr(noise_modifier, "use_legacy_noise", True)


_MODIFIER_TYPE_NAMES = {"FNGENERATOR": "Built-In Function", "STEPPED": "Stepped Interpolation"}  # as 3.x lists them


def modifier_name(modifier):
    """An F-curve modifier's name as the Graph Editor shows it: ``FModifier.name`` where it exists
    (Blender 4.x and later), else its type's name as Blender 3.x shows it ("Noise", "Built-In Function")."""
    name = getattr(modifier, "name", "")
    return name or _MODIFIER_TYPE_NAMES.get(modifier.type, modifier.type.replace("_", " ").title())


def all_drivers():
    """(ID, driver F-curve) for every driver in the file, node trees inside materials and worlds included."""
    for collection in animatable_id_collections():
        for id_data in collection:
            for owner in (id_data, getattr(id_data, "node_tree", None)):
                animation_data = getattr(owner, "animation_data", None) if owner is not None else None
                if animation_data is not None:
                    for driver_curve in animation_data.drivers:
                        yield owner, driver_curve


def animatable_id_collections():
    """The bpy.data collections whose IDs can carry drivers."""
    names = ("scenes", "objects", "materials", "worlds", "node_groups", "meshes", "cameras", "lights",
             "shape_keys", "textures", "curves", "grease_pencils", "armatures", "particles")
    return [getattr(bpy.data, name) for name in names if hasattr(bpy.data, name)]


def all_strips(scene):
    """Every strip of the scene's sequencer (empty when it has none)."""
    editor = scene.sequence_editor
    if editor is None:
        return []
    if hasattr(editor, "strips_all"):
        return list(editor.strips_all)
    return list(editor.sequences_all)


def top_level_strips(scene):
    """The collection new strips are added to (``strips`` / ``sequences``)."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def new_sound_strip(scene, name, filepath, channel, frame_start):
    """Add a sound strip; None when this Blender build has no audio (some bpy wheels)."""
    try:
        return top_level_strips(scene).new_sound(name, filepath, channel=channel, frame_start=frame_start)
    except RuntimeError as error:
        if "Audaspace" in str(error):
            return None
        raise


def new_image_strip(scene, name, first_file, channel, frame_start):
    """Add an image-sequence strip starting with ``first_file``."""
    return top_level_strips(scene).new_image(name, first_file, channel=channel, frame_start=frame_start)


def remove_strip(scene, strip):
    top_level_strips(scene).remove(strip)


def sound_bake_operator():
    """Blender's own Graph Editor sound bake operator (for the benchmark)."""
    graph = bpy.ops.graph
    return graph.sound_to_samples if hasattr(graph, "sound_to_samples") else graph.sound_bake


def show_sidebar_tab(region, category):
    """Switch a sidebar region to a tab, where Blender allows it."""
    if hasattr(region, "active_panel_category"):
        try:
            region.active_panel_category = category
        except (TypeError, AttributeError):
            pass


def _blend_relative_path_options():
    # Blender 5.0 rejects "//" paths unless the property says it accepts them;
    # where the flag exists, RNA properties report it as is_path_supports_blend_relative.
    if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties:
        return {"PATH_SUPPORTS_BLEND_RELATIVE"}
    return set()


PATH_OPTIONS = _blend_relative_path_options()  # use as StringProperty(options=PATH_OPTIONS)


def online_access_allowed():
    """False when the user has disallowed network access (4.2+)."""
    return getattr(bpy.app, "online_access", True)


# Where a user allows downloads (the message of every refusal names it).
ALLOW_ONLINE_ACCESS = ("Preferences > System > Network > Allow Online Access (or start Blender with "
                       "--online-mode)")


def addon_data_folder(package):
    """A folder for the add-on's own data (the render environment), made if missing: the extension's user
    folder when it runs as a 4.2+ extension (kept across updates of the extension), else
    <Blender's user data folder>/latentwalk (a legacy add-on, 3.x)."""
    extension_path_user = getattr(bpy.utils, "extension_path_user", None)
    if extension_path_user is not None and package.startswith("bl_ext."):
        return extension_path_user(package, path="", create=True)
    return bpy.utils.user_resource("DATAFILES", path="latentwalk", create=True)


def blender_python():
    """Blender's Python interpreter (the bundled one, or the system's for a distribution's Blender such as
    Debian's): ``sys.executable`` since 2.91; ``bpy.app.binary_path_python`` where it still exists."""
    return getattr(bpy.app, "binary_path_python", "") or sys.executable


def mark_preferences_changed(context):
    """Let Auto-Save Preferences store a value set from Python (Blender only notices edits made in the UI)."""
    if hasattr(context.preferences, "is_dirty"):
        context.preferences.is_dirty = True


def set_status_text(workspace, text):
    """The status bar's text for ``workspace`` (None: Blender's own again); a deleted workspace is ignored."""
    try:
        if workspace is not None:
            workspace.status_text_set(text)
    except ReferenceError:
        pass


def use_video_output(image_settings):
    """Make the render output a movie file; Blender 5.0 first needs the VIDEO media type."""
    if hasattr(image_settings, "media_type"):
        image_settings.media_type = "VIDEO"
    image_settings.file_format = "FFMPEG"


def why_strip_is_silent(scene, strip):
    """Why a sound strip will not be heard in a render ("" when it will): the strip muted, its
    channel muted (channels have their own mute since 3.0), or its volume at 0."""
    if strip.mute:
        return f"the song strip '{strip.name}' is muted"
    channels = getattr(scene.sequence_editor, "channels", None)
    if channels is not None and strip.channel < len(channels) and channels[strip.channel].mute:
        return f"channel {strip.channel}, which holds the song strip '{strip.name}', is muted"
    if getattr(strip, "volume", 1.0) <= 0.0:
        return f"the song strip '{strip.name}' has volume 0"
    return ""


def set_render_display_type(display_type):
    """Set where Blender shows a render ("NONE": keep the user interface); returns the previous setting.
    A preference (``view.render_display_type``) in every version we support."""
    view = bpy.context.preferences.view
    previous = view.render_display_type
    view.render_display_type = display_type
    return previous


@contextlib.contextmanager
def blender_output_to(path):
    """Blender's own console output (C's stdout: a render's lines per frame) into the file ``path`` while
    the block runs, where the process's output can be redirected (POSIX); elsewhere it stays as it is."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        stdout_fd = sys.stdout.fileno()
    except (OSError, AttributeError, ValueError, TypeError):  # Windows, or no real stdout
        yield
        return
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask decides, as for any file
    sys.stdout.flush()
    libc.fflush(None)
    saved_fd = os.dup(stdout_fd)
    os.dup2(log_fd, stdout_fd)
    try:
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved_fd, stdout_fd)
        os.close(saved_fd)
        os.close(log_fd)


def other_modal_operator_running(window, own_prefix="latentwalk"):
    """True while ``window`` runs a modal operator that is not ours (a transform: G in the Graph Editor).
    ``Window.modal_operators`` is 4.2+ (4.x); Blender 3.4 cannot tell, so there it is False."""
    operators = getattr(window, "modal_operators", None) if window is not None else None
    # bl_idname reads "LATENTWALK_OT_bake" or "latentwalk.bake" depending on where it is asked.
    return any(not op.bl_idname.lower().startswith(own_prefix) for op in operators or ())


def render_job_running():
    """True while Blender's own render job runs (Encode Video in the UI); is_job_running is 3.3+."""
    is_job_running = getattr(bpy.app, "is_job_running", None)
    return bool(is_job_running and is_job_running("RENDER"))


def saved_blend_path(handler_arguments):
    """The file a save wrote, from a ``save_pre``/``save_post`` handler's arguments: the first one where Blender
    passes the path (4.2, 5.0: a Save Copy's path too), else (3.4 passes None) ``bpy.data.filepath``, which a
    Save Copy leaves on the open file: a copy cannot be told apart there."""
    first = handler_arguments[0] if handler_arguments else None
    return first if isinstance(first, str) and first else bpy.data.filepath
