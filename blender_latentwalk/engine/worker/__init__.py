"""The worker process: typed requests in on stdin, typed events out on stdout.

Renders and downloads for the add-on, in a Python of its own (torch never loads into Blender).
messages.py is the protocol both sides speak (it loads in Blender's own Python too); process.py
serves it.

May import: walk, render, setup.
"""
