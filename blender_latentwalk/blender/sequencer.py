"""The song in the Video Sequence Editor, and beat markers on the timeline."""

import os

import bpy

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


def encode_video(scene, path, first=None, last=None, interactive=False):
    """Render the sequencer (frames + song) to ``path`` with Blender's FFmpeg.

    interactive: start Blender's own render job (its window shows progress, Esc
    stops it) and return; otherwise render frames ``first..last`` (default: the
    scene's range) before returning.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    set_video_output(scene, path)
    if interactive:
        bpy.ops.render.render("INVOKE_DEFAULT", animation=True)
        return
    saved_range = scene.frame_start, scene.frame_end
    scene.frame_start = saved_range[0] if first is None else first
    scene.frame_end = saved_range[1] if last is None else last
    try:
        bpy.ops.render.render(animation=True)
    finally:
        scene.frame_start, scene.frame_end = saved_range
