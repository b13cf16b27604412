# Slow travel through the palette: low psi, no kicks, long class smoothing (any generator).
import bpy
walk = bpy.context.scene.latentwalk.walk
walk.mode = 'travel'
walk.truncation = 0.5
walk.pulse = 0.0
walk.speed = 0.5
walk.jitter = 0.0
walk.class_smoothing_ms = 2000.0
