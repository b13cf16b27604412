import bpy
diffusion = bpy.context.scene.latentwalk.diffusion
diffusion.model = 'stabilityai/sd-turbo'
diffusion.tiny_vae = 'madebyollin/taesd'
diffusion.steps = 2
diffusion.strength = 0.5
diffusion.guidance = 0.0
