import bpy
diffusion = bpy.context.scene.latentwalk.diffusion
diffusion.model = 'none'
diffusion.tiny_vae = ''
