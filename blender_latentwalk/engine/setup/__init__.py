"""Set-up: the render environment (PyTorch and its friends) and the models on this machine.

`environment` runs in a bare Python (Blender's own) and imports nothing of the engine's but
`errors` (which needs only the standard library); `models` is the catalogue: what is cached, what to download, where.

May import: generators.
"""
