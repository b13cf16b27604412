"""The worker process: typed requests in on stdin, typed events out on stdout.

Renders, downloads and analyses (Bake Curves) for the add-on, in a Python of its own: torch never
loads into Blender, and Blender stays usable while the worker works.
messages.py is the protocol both sides speak (it loads in Blender's own Python too); process.py
serves it.

May import: analysis, walk, render, setup.
"""
