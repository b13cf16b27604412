# StyleGAN3's signature: the picture turns with the music (rotation follows the loudness, onsets nudge it).
import bpy
settings = bpy.context.scene.latentwalk
walk = settings.walk
walk.mode = 'travel'
walk.latent_space = 'w'
walk.truncation = 0.7
walk.pulse = 0.6
walk.speed = 1.0
walk.rotation_deg = 0.0
for index in reversed(range(len(settings.modulations))):
    if settings.modulations[index].target in ('rotation_deg', 'translate_x', 'translate_y'):
        settings.modulations.remove(index)
spin = settings.modulations.add()
spin.target, spin.curve, spin.amount = 'rotation_deg', 'rms', 90.0
drift = settings.modulations.add()
drift.target, drift.curve, drift.amount = 'translate_x', 'onset', 0.1
