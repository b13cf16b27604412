"""The song in the Video Sequence Editor, the rendered frames above it, and beat markers on the timeline."""

import os

import bpy

from ..engine.errors import LatentWalkError
from ..engine.render.png_writer import frame_path
from . import compat

BEAT_MARKER_NAME = "beat"


def same_file(path_a, path_b):
    """True when two Blender paths (``//`` relative to the .blend) name the same file."""
    return os.path.normcase(os.path.abspath(bpy.path.abspath(path_a))) == os.path.normcase(
        os.path.abspath(bpy.path.abspath(path_b))
    )


def find_sound_strip(scene, audio_path):
    """The sound strip playing ``audio_path``: the one the bake added, else any."""
    settings = scene.latentwalk
    strips = [s for s in compat.all_strips(scene) if s.type == "SOUND" and s.sound is not None]
    for strip in strips:
        if strip.name == settings.sound_strip_name and same_file(strip.sound.filepath, audio_path):
            return strip
    for strip in strips:
        if same_file(strip.sound.filepath, audio_path):
            return strip
    return None


def song_strip(scene):
    """The sound strip the bake put the song in (by name), else one playing the Song, else None."""
    settings = scene.latentwalk
    strips = [s for s in compat.all_strips(scene) if s.type == "SOUND" and s.sound is not None]
    return (next((s for s in strips if s.name == settings.sound_strip_name), None)
            or (find_sound_strip(scene, settings.audio_path) if settings.audio_path else None))


def repair_song_strip(scene):
    """Point a song strip whose file no longer resolves back at the Song.

    A .blend moved or copied elsewhere keeps the strip's path relative to it (Blender makes
    paths relative on save) while the Song setting may still resolve. Returns the lines to
    tell the user; raises LatentWalkError when neither file exists.
    """
    strip = song_strip(scene)
    if strip is None:
        return []
    settings = scene.latentwalk
    song = os.path.abspath(bpy.path.abspath(settings.audio_path)) if settings.audio_path else ""
    played = os.path.abspath(bpy.path.abspath(strip.sound.filepath))
    if os.path.isfile(played):
        return []
    if not os.path.isfile(song):
        raise LatentWalkError(f"the song strip '{strip.name}' plays '{played}', which does not exist, and the "
                              f"Song setting '{song or '(empty)'}' does not either: set Song to the song's file "
                              "(or give --audio).")
    strip.sound.filepath = settings.audio_path  # as the artist set it: "//song.wav" stays relative
    return [f"the song strip played '{played}', which does not exist; it now plays the Song '{song}'"]


def check_song_strip(scene):
    """Make sure the video will have the song: the bake's sound strip exists, plays a file that
    exists (`repair_song_strip` first mends a path a move broke) and will be heard (strip and
    channel not muted, volume above 0), so the video is never encoded with silence. That the
    strip plays the song the curves were baked from is `bake_state.check_current`'s to say.
    Raises LatentWalkError.
    """
    strip = song_strip(scene)
    if strip is None and not bpy.app.build_options.audaspace:
        raise LatentWalkError("this Blender build cannot play or encode sound (it was built without Audaspace), so "
                              "the video would be silent: encode in a Blender with audio (any release build).")
    if strip is None:
        raise LatentWalkError("the Sequencer has no sound strip of the song, so the video would be silent: "
                              "press Bake Curves (it adds the song), or put the song on the Sequencer.")
    played = os.path.abspath(bpy.path.abspath(strip.sound.filepath))
    if not os.path.isfile(played):
        raise LatentWalkError(f"the song strip '{strip.name}' plays '{played}', which does not exist: set Song to "
                              "the song's file and bake again.")
    silent = compat.why_strip_is_silent(scene, strip)
    if silent:
        raise LatentWalkError(f"{silent}, so the video would be silent: make it heard, then encode again.")


def _free_channel(scene, first_frame, last_frame, lowest=1):
    """The lowest channel from ``lowest`` up with no strip between the two frames."""
    busy = {
        s.channel
        for s in compat.all_strips(scene)
        if s.frame_final_start <= last_frame and s.frame_final_end > first_frame
    }
    channel = lowest
    while channel in busy:
        channel += 1
    return channel


def ensure_sound_strip(scene, audio_path, duration_frames):
    """Put the song in the sequencer once, so scrubbing plays it.

    Returns the strip, or None when this Blender build cannot play audio.
    """
    strip = find_sound_strip(scene, audio_path)
    ours = next((s for s in compat.all_strips(scene)
                 if s.type == "SOUND" and s.name == scene.latentwalk.sound_strip_name), None)
    if strip is None and ours is not None:
        # The song changed: a new strip where the artist put the old one (same channel, start and
        # volume), so its length is the new song's (a strip given another sound keeps its old length).
        name, channel, start, volume = ours.name, ours.channel, int(ours.frame_start), ours.volume
        compat.remove_strip(scene, ours)
        strip = compat.new_sound_strip(scene, name, audio_path, channel, start)
        if strip is not None:
            strip.name, strip.volume = name, volume
    if strip is None:
        start = scene.frame_start
        channel = _free_channel(scene, start, start + duration_frames)
        name = os.path.splitext(os.path.basename(audio_path))[0] or "Song"
        strip = compat.new_sound_strip(scene, name, audio_path, channel, start)
    song = scene.latentwalk.audio_path
    if strip is not None and song.startswith("//") and strip.sound.filepath != song:
        strip.sound.filepath = song  # relative like the Song, so the strip still plays when the project moves
    scene.latentwalk.sound_strip_name = strip.name if strip is not None else ""
    return strip


def set_beat_markers(scene, beat_frames, first_frame):
    """Replace the bake's beat markers (named "beat") with new ones."""
    markers = scene.timeline_markers
    for marker in [m for m in markers if m.name == BEAT_MARKER_NAME]:
        markers.remove(marker)
    for frame in beat_frames:
        markers.new(BEAT_MARKER_NAME, frame=int(frame) + first_frame)


PREVIEW_STRIP_NAME = "Latent Walk Preview"
FINAL_STRIP_NAME = "Latent Walk"


def replace_image_strip(scene, name, frame_paths, frame_start, above_channel):
    """Put an image sequence in the sequencer, replacing the strip of that name.

    The strip goes on the first free channel above ``above_channel`` (the song's),
    so the video sits over the audio it belongs to. Returns the strip.
    """
    for strip in [s for s in compat.all_strips(scene) if s.name == name]:
        compat.remove_strip(scene, strip)
    folder = os.path.dirname(frame_paths[0])
    channel = _free_channel(scene, frame_start, frame_start + len(frame_paths) - 1, lowest=above_channel + 1)
    strip = compat.new_image_strip(scene, name, frame_paths[0], channel, frame_start)
    for path in frame_paths[1:]:
        strip.elements.append(os.path.basename(path))
    strip.directory = folder + os.sep
    return strip


def mute_strip(scene, name):
    for strip in compat.all_strips(scene):
        if strip.name == name:
            strip.mute = True


def lay_frames(scene, folder, first, last, preview=False):
    """Put frames first..last of ``folder`` on the Sequencer above the song, replacing the strip
    of their kind; the final frames mute the preview strip. Returns the strip."""
    paths = [frame_path(folder, number) for number in range(first, last + 1)]
    song = song_strip(scene)
    name = PREVIEW_STRIP_NAME if preview else FINAL_STRIP_NAME
    strip = replace_image_strip(scene, name, paths, first, song.channel if song else 0)
    if not preview:
        mute_strip(scene, PREVIEW_STRIP_NAME)
    return strip


def set_video_output(scene, path):
    """Point the scene's output at an H.264 + AAC MP4 of the sequencer (Output Properties show it)."""
    render = scene.render
    compat.use_video_output(render.image_settings)
    ffmpeg = render.ffmpeg
    ffmpeg.format, ffmpeg.codec = "MPEG4", "H264"
    ffmpeg.constant_rate_factor, ffmpeg.ffmpeg_preset = "HIGH", "GOOD"
    ffmpeg.audio_codec, ffmpeg.audio_channels, ffmpeg.audio_bitrate = "AAC", "STEREO", 192
    render.filepath = path
    render.use_file_extension = True
    render.use_sequencer = True
    render.use_compositing = False


def _settable(struct):
    """{name: value} of a struct's plain, writable properties (what a user may have set)."""
    values = {}
    for prop in struct.bl_rna.properties:
        if prop.identifier == "rna_type" or prop.is_readonly or prop.type in ("POINTER", "COLLECTION"):
            continue
        value = getattr(struct, prop.identifier)
        values[prop.identifier] = tuple(value) if getattr(prop, "is_array", False) else value
    return values


class OutputSettings:
    """The scene's output settings as the user left them, to put back after an encode.

    Covers the file path and format, the FFmpeg settings, the sequencer/compositing
    switches and the frame range.
    """

    def __init__(self, scene):
        self.scene = scene
        render = scene.render
        self.render = {name: getattr(render, name) for name in
                       ("filepath", "use_file_extension", "use_sequencer", "use_compositing",
                        "frame_map_old", "frame_map_new")}
        self.range = scene.frame_start, scene.frame_end, scene.frame_step
        self.image = _settable(render.image_settings)
        self.ffmpeg = _settable(render.ffmpeg)

    render_display_type = None  # the preference an interactive encode changed, to put back

    def restore(self):
        scene = self.scene
        render = scene.render
        if self.render_display_type is not None:
            compat.set_render_display_type(self.render_display_type)
        for name, value in self.render.items():
            setattr(render, name, value)
        scene.frame_start, scene.frame_end, scene.frame_step = self.range
        # media_type (5.0) decides which file formats exist, so it goes first.
        image = dict(self.image)
        for name in ("media_type", "file_format"):
            if name in image:
                _set_quietly(render.image_settings, name, image.pop(name))
        for struct, values in ((render.image_settings, image), (render.ffmpeg, self.ffmpeg)):
            for name, value in values.items():
                _set_quietly(struct, name, value)


def _set_quietly(struct, name, value):
    try:
        if getattr(struct, name) != value:
            setattr(struct, name, value)
    except (AttributeError, TypeError, ValueError):  # not valid for the restored format: Blender derives it
        pass


_pending_restores = []  # OutputSettings of interactive encodes still running


def restore_output_settings():
    """Put back the output settings (and render display) of every interactive encode started; safe twice.

    Called on the main thread (the encode job's poll once Blender's render job is over, a file load, quitting),
    never from render_complete/render_cancel: Blender runs those in its render thread, where writing the scene
    races the UI (a panel drawn at that moment refuses the write: "Writing to ID classes in this context")."""
    while _pending_restores:
        _pending_restores.pop().restore()


def encode_video(scene, path, first=None, last=None, interactive=False):
    """Render the sequencer (frames + song) to ``path`` with Blender's FFmpeg, frames
    ``first..last`` (default: the scene's range); the user's output settings are put back after.

    interactive: start Blender's own render job (its window shows progress, Esc
    stops it) and return; the caller calls `restore_output_settings` once that job is over.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    saved = OutputSettings(scene)
    set_video_output(scene, path)
    scene.frame_start = saved.range[0] if first is None else first
    scene.frame_end = saved.range[1] if last is None else last
    # Every frame, at the song's speed: a Step of 2 or a time remap would put the video out of sync.
    scene.frame_step = 1
    scene.render.frame_map_old = scene.render.frame_map_new = 100
    if interactive:
        # Blender's render job in this window (its progress in the status bar), not in a render window
        # that would cover the Sequencer: the preference is put back with the output settings.
        saved.render_display_type = compat.set_render_display_type("NONE")
        _pending_restores.append(saved)  # the caller's job puts them back when Blender's render job ends
        try:
            started = bpy.ops.render.render("INVOKE_DEFAULT", animation=True)
        except RuntimeError:
            restore_output_settings()
            raise
        if "RUNNING_MODAL" not in started:  # Blender refused to start its render job: nothing is encoding
            restore_output_settings()
            raise RuntimeError("Blender did not start the encode (its console says why): the output settings "
                               "are as they were.")
        return
    try:
        with compat.blender_output_to(path + ".log"):  # its "Append frame" and "Time:" lines, per frame
            bpy.ops.render.render(animation=True)
    except RuntimeError as error:
        raise RuntimeError(f"{str(error).strip()} (Blender's encode log: {path}.log)") from None
    else:
        try:
            os.unlink(path + ".log")
        except OSError:  # the video is written; a log left behind is no failure
            pass
    finally:
        saved.restore()
