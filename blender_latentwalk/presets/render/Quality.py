import bpy
diffusion = bpy.context.scene.latentwalk.diffusion
diffusion.model = 'stable-diffusion-v1-5/stable-diffusion-v1-5'
diffusion.tiny_vae = ''
diffusion.steps = 20
diffusion.strength = 0.5
diffusion.guidance = 7.5
