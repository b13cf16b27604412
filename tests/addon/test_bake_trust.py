"""Trust in the bake (issue 9), as an artist meets it: bake, edit, change, re-bake or render."""

import os
import sys

import bpy
import numpy as np
import pytest

import bake_scenarios
import synth
from blender_latentwalk.blender import bake_state, compat, curves, operators, render, sequencer
from blender_latentwalk.engine import analysis


def test_a_new_fps_is_refused_until_a_rebake_that_retimes_the_edits(scene, song):
    bake_scenarios.fps_change_is_refused_until_a_rebake_that_retimes_edits(scene, song)


def test_bands_keep_their_animation_and_drivers_when_removed_moved_or_added(scene, song):
    bake_scenarios.removing_and_moving_bands_keeps_animation_and_drivers_on_their_band(scene, song)
