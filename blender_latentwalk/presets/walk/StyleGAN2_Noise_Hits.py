# StyleGAN2: every hit shakes the fine detail (onsets add per-layer noise), the bands move the styles.
import bpy
settings = bpy.context.scene.latentwalk
walk = settings.walk
walk.mode = 'displacement'
walk.latent_space = 'w'
walk.truncation = 0.8
walk.pulse = 0.4
walk.noise_strength = 0.5
walk.noise_pulse = 2.5
