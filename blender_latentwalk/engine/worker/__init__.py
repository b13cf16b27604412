"""The worker process: typed requests in on stdin, typed events out on stdout.

Renders and downloads for the add-on, in a Python of its own (torch never loads into Blender).

May import: walk, render, setup.
"""
