"""The "Latent Walk" sidebar tab, in the Sequencer and in the Graph Editor."""

import bpy

from . import bake_state

CATEGORY = "Latent Walk"


class LATENTWALK_UL_bands(bpy.types.UIList):
    def draw_item(self, context, layout, data, band, icon, active_data, active_property, index=0, flt_flag=0):
        row = layout.row(align=True)
        row.prop(band, "title", text="", emboss=False)
        row.label(text=f"{band.low_hz:g}-{band.high_hz:g} Hz")
        if band.source != "mix":
            row.label(text=bpy.path.basename(band.stem_path) if band.source == "stem" else band.source.title())
        row.prop(band, "locked", text="", icon="LOCKED" if band.locked else "UNLOCKED", emboss=False)


class _LatentWalkPanel:
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Latent Walk"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.latentwalk
        layout.use_property_split = False

        layout.prop(settings, "audio_path")

        layout.label(text="Bands")
        row = layout.row()
        row.template_list("LATENTWALK_UL_bands", "", settings, "bands", settings, "active_band_index", rows=4)
        buttons = row.column(align=True)
        buttons.operator("latentwalk.band_add", icon="ADD", text="")
        buttons.operator("latentwalk.band_remove", icon="REMOVE", text="")
        buttons.separator()
        buttons.operator("latentwalk.band_move", icon="TRIA_UP", text="").direction = "UP"
        buttons.operator("latentwalk.band_move", icon="TRIA_DOWN", text="").direction = "DOWN"
        if not len(settings.bands):
            layout.operator("latentwalk.bands_default", icon="PRESET")

        if 0 <= settings.active_band_index < len(settings.bands):
            band = settings.bands[settings.active_band_index]
            box = layout.box()
            box.prop(band, "title")
            row = box.row(align=True)
            row.prop(band, "low_hz")
            row.prop(band, "high_hz")
            row = box.row(align=True)
            row.prop(band, "gain")
            row.prop(band, "threshold")
            row = box.row(align=True)
            row.prop(band, "attack_ms")
            row.prop(band, "release_ms")
            box.prop(band, "source")
            if band.source == "stem":
                box.prop(band, "stem_path")

        column = layout.column(align=True)
        column.prop(settings, "offset_ms")
        row = column.row(align=True)
        row.label(text="Normalise")
        row.prop(settings, "normalise", expand=True)
        if settings.normalise == "window":
            column.prop(settings, "normalise_window_s")
        for curve in ("onset", "chroma"):
            row = column.row(align=True)
            row.prop(settings, f"{curve}_source", text=curve.title())
            if getattr(settings, f"{curve}_source") == "stem":
                row.prop(settings, f"{curve}_stem_path", text="")
        row = column.row(align=True)
        row.prop(settings, "add_beat_markers")
        row.prop(settings, "fit_frame_range")
        row = column.row(align=True)
        row.prop(settings, "lock_onset", text="Onset", icon="LOCKED" if settings.lock_onset else "UNLOCKED")
        row.prop(settings, "lock_rms", text="Loudness", icon="LOCKED" if settings.lock_rms else "UNLOCKED")
        row.prop(settings, "lock_chroma", text="Chroma", icon="LOCKED" if settings.lock_chroma else "UNLOCKED")

        stale = bake_state.changes(context.scene) if bake_state.is_baked(settings) else []
        if stale:  # the old summary would pretend to be current: say what changed instead
            box = layout.box()
            box.alert = True
            box.label(text="The bake is out of date:", icon="ERROR")
            column = box.column(align=True)
            for change in stale:  # "the scene is now 30 fps, the curves were baked at 24 fps": two short lines
                for part in change.split(", "):
                    column.label(text=part)
            box.operator("latentwalk.bake", text="Re-bake", icon="FILE_REFRESH")
            box.label(text="Edited curves are kept and retimed")
        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("latentwalk.bake", icon="GRAPH")
        row.operator("latentwalk.show_curves", icon="FCURVE")
        if settings.last_bake_summary and not stale:
            layout.label(text=settings.last_bake_summary, icon="CHECKMARK")


class _WalkPanel:
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Walk"

    def draw(self, context):
        layout = self.layout
        walk = context.scene.latentwalk.walk
        layout.prop(walk, "mode", expand=True)
        layout.prop(walk, "model")
        column = layout.column(align=True)
        column.prop(walk, "truncation")
        column.prop(walk, "pulse")
        if walk.mode == "travel":
            column.prop(walk, "speed")
        column.prop(walk, "jitter")
        layout.prop(walk, "seed")
        layout.prop(walk, "class_mode")
        row = layout.row()
        row.template_list("LATENTWALK_UL_classes", "", walk, "classes", walk, "active_class_index", rows=4)
        buttons = row.column(align=True)
        buttons.operator("latentwalk.class_add", icon="ADD", text="")
        buttons.operator("latentwalk.class_remove", icon="REMOVE", text="")
        buttons.operator("latentwalk.classes_default", icon="PRESET", text="")
        layout.prop(walk, "class_smoothing_ms")
        if 0 <= context.scene.latentwalk.active_band_index < len(context.scene.latentwalk.bands):
            band = context.scene.latentwalk.bands[context.scene.latentwalk.active_band_index]
            layout.prop(band, "weight", text=f"{band.title} Weight")
        row = layout.row(align=True)
        row.prop(walk, "preview_width")
        row.prop(walk, "device", text="")
        layout.prop(walk, "preview_folder")
        layout.operator("latentwalk.preview", icon="SEQ_PREVIEW")


class _RenderPanel:
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Render"

    def draw(self, context):
        from . import render

        from . import presets

        layout = self.layout
        diffusion = context.scene.latentwalk.diffusion
        presets.draw_menu(layout)
        layout.prop(diffusion, "model")
        layout.prop(diffusion, "prompt")
        layout.label(text="Markers \"prompt: ...\" change it", icon="MARKER_HLT")
        layout.prop(diffusion, "negative_prompt")
        column = layout.column(align=True)
        column.prop(diffusion, "strength")
        column.prop(diffusion, "guidance")
        column.prop(diffusion, "steps")
        column.prop(diffusion, "seed")
        layout.prop(diffusion, "prompt_blend_ms")
        layout.prop(diffusion, "tiny_vae")
        row = layout.row(align=True)
        row.prop(diffusion, "batch_size")
        row.prop(context.scene.latentwalk.walk, "device", text="")
        layout.prop(diffusion, "devices")
        layout.prop(diffusion, "output_folder")
        checked = render.last_check(context.scene)
        row = layout.row(align=True)
        if checked is None:
            row.label(text="Frames: not checked yet", icon="QUESTION")
        else:
            when, status = checked
            row.label(text=f"{status.summary()} ({when})", icon="CHECKMARK" if status.complete else "ERROR")
        row.operator("latentwalk.check_frames", text="", icon="FILE_REFRESH")
        job = render.active_job()
        if job is not None:
            layout.label(text=job.status_line(), icon="RENDER_ANIMATION")
            layout.operator("latentwalk.render_cancel", icon="CANCEL")
        else:
            row = layout.row(align=True)
            row.scale_y = 1.4
            row.operator("latentwalk.render", icon="RENDER_ANIMATION")
            row.operator("latentwalk.encode_video", icon="FILE_MOVIE")
        layout.operator("latentwalk.release_models", icon="X")


class LATENTWALK_PT_sequencer(_LatentWalkPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_sequencer"
    bl_space_type = "SEQUENCE_EDITOR"


class LATENTWALK_PT_graph(_LatentWalkPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_graph"
    bl_space_type = "GRAPH_EDITOR"


class LATENTWALK_PT_sequencer_walk(_WalkPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_sequencer_walk"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_parent_id = "LATENTWALK_PT_sequencer"


class LATENTWALK_PT_graph_walk(_WalkPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_graph_walk"
    bl_space_type = "GRAPH_EDITOR"
    bl_parent_id = "LATENTWALK_PT_graph"


class LATENTWALK_PT_sequencer_render(_RenderPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_sequencer_render"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_parent_id = "LATENTWALK_PT_sequencer"


class LATENTWALK_PT_graph_render(_RenderPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_graph_render"
    bl_space_type = "GRAPH_EDITOR"
    bl_parent_id = "LATENTWALK_PT_graph"


class _ModulationPanel:
    """Settings that follow a curve: base + amount x curve, sampled into the plan (no driver, no cycle)."""

    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Modulation"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.latentwalk
        for index, item in enumerate(settings.modulations):
            box = layout.box()
            row = box.row(align=True)
            row.prop(item, "target", text="")
            row.prop(item, "curve_choice", text="")
            row = box.row(align=True)
            row.prop(item, "mute", text="", icon="HIDE_ON" if item.mute else "HIDE_OFF", emboss=False)
            row.prop(item, "amount")
            row.operator("latentwalk.modulation_remove", text="", icon="X").index = index
        layout.operator("latentwalk.modulation_add", icon="ADD")


class LATENTWALK_PT_sequencer_modulation(_ModulationPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_sequencer_modulation"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_parent_id = "LATENTWALK_PT_sequencer_render"


class LATENTWALK_PT_graph_modulation(_ModulationPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_graph_modulation"
    bl_space_type = "GRAPH_EDITOR"
    bl_parent_id = "LATENTWALK_PT_graph_render"


classes = (LATENTWALK_UL_bands, LATENTWALK_PT_sequencer, LATENTWALK_PT_graph,
           LATENTWALK_PT_sequencer_walk, LATENTWALK_PT_graph_walk,
           LATENTWALK_PT_sequencer_render, LATENTWALK_PT_graph_render,
           LATENTWALK_PT_sequencer_modulation, LATENTWALK_PT_graph_modulation)
