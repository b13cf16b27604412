"""The "Latent Walk" sidebar tab, in the Sequencer and in the Graph Editor."""

import bpy

from . import bake_state, encode, jobs, models, modulation, presets, sections

CATEGORY = "Latent Walk"

# Laid out for the narrowest default sidebar (the Graph Editor's, about 175 pixels of panel at 100% scale):
# long labels get a row of their own, a label column holds the names of text and menu fields, and no row
# holds two fields whose labels need more than half of that width.
LABEL_FACTOR = 0.4


def labelled(layout, data, prop, text, expand=False):
    """A field with its name in a label column (Blender shortens a name squeezed into the field itself)."""
    split = layout.split(factor=LABEL_FACTOR, align=True)
    split.label(text=text)
    if expand:  # the buttons show the choices' names
        split.row(align=True).prop(data, prop, expand=True)
    else:
        split.prop(data, prop, text="")


def text_width(context, text):
    """Width in pixels of ``text`` in the UI's label font."""
    import blf

    points = context.preferences.ui_styles[0].widget_label.points * context.preferences.system.ui_scale
    try:
        blf.size(0, points)
    except TypeError:  # Blender before 4.0 also wants the dpi
        blf.size(0, points, 72)
    return blf.dimensions(0, text)[0]


def wrap(context, text, width):
    """``text`` as lines of at most ``width`` pixels, broken between words, after a comma where one is
    in the line's second half (a word longer than a line gets a line of its own)."""
    found, words = [], []
    for word in text.split():
        if words and text_width(context, " ".join(words + [word])) > width:
            commas = [i for i, w in enumerate(words) if w.endswith(",") and 2 * (i + 1) > len(words)]
            cut = commas[-1] + 1 if commas else len(words)
            found.append(" ".join(words[:cut]))
            words = words[cut:]
        words.append(word)
    return found + [" ".join(words)] if words else found


def line_width(context, beside_px=0):
    """Pixels a label's text may take in this sidebar; ``beside_px``: what the row holds beside it (an icon
    button: 25)."""
    scale = context.preferences.system.ui_scale
    # The sidebar's tabs, the panel's margins and the icon take about 90 pixels at 100% (measured in 3.4).
    return (context.region.width if context.region else 300) - (90 + beside_px) * scale


def lines(layout, context, text, icon="NONE", beside_px=0):
    """A long status as lines that fit the sidebar, the icon on the first (the others indented alike)."""
    column = layout.column(align=True)
    for index, line in enumerate(wrap(context, text, line_width(context, beside_px))):
        column.label(text=line, icon=icon if index == 0 else ("BLANK1" if icon != "NONE" else "NONE"))


class LATENTWALK_UL_bands(bpy.types.UIList):
    def draw_item(self, context, layout, data, band, icon, active_data, active_property, index=0, flt_flag=0):
        # Name and range ("2k-4k": the list's heading says Hz), a lock on a locked band (Lock is in the box
        # below): short enough for the Graph Editor's narrow sidebar.
        split = layout.split(factor=0.5, align=True)
        split.label(text=band.title)  # renamed in the box: a text field's padding would cut "High Mids"
        split.label(text=f"{_short_hz(band.low_hz)}-{_short_hz(band.high_hz)}", icon="LOCKED" if band.locked else "NONE")


def _short_hz(hz):
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


class _LatentWalkPanel:
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Latent Walk"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.latentwalk
        layout.use_property_split = False

        split = layout.split(factor=LABEL_FACTOR, align=True)
        split.label(text="Song")
        row = split.row(align=True)
        row.prop(settings, "audio_path", text="")
        row.operator("latentwalk.choose_song", text="", icon="FILEBROWSER")

        layout.label(text="Bands (Hz)")
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
            split = box.split(factor=LABEL_FACTOR, align=True)
            split.label(text="Name")
            row = split.row(align=True)
            row.prop(band, "title", text="")
            row.prop(band, "locked", text="", icon="LOCKED" if band.locked else "UNLOCKED")
            column = box.column(align=True)  # Low and High side by side would cut "High 2000" in the Graph Editor
            for prop in ("low_hz", "high_hz", "gain", "threshold", "attack_ms", "release_ms"):
                column.prop(band, prop)
            labelled(box, band, "source", "Source")
            if band.source == "stem":
                labelled(box, band, "stem_path", "Stem")

        layout.prop(settings, "offset_ms")
        labelled(layout, settings, "normalise", "Normalise", expand=True)
        if settings.normalise == "window":
            layout.prop(settings, "normalise_window_s")
        for curve in ("onset", "chroma"):
            labelled(layout, settings, f"{curve}_source", curve.title())
            if getattr(settings, f"{curve}_source") == "stem":
                labelled(layout, settings, f"{curve}_stem_path", "Stem")
        column = layout.column(align=True)
        column.prop(settings, "add_beat_markers")
        column.prop(settings, "fit_frame_range")
        layout.label(text="Keep on re-bake:")
        grid = layout.grid_flow(row_major=True, columns=2, even_columns=True, align=True)
        grid.prop(settings, "lock_onset", text="Onset", icon="LOCKED" if settings.lock_onset else "UNLOCKED")
        grid.prop(settings, "lock_rms", text="Loudness", icon="LOCKED" if settings.lock_rms else "UNLOCKED")
        grid.prop(settings, "lock_chroma", text="Chroma", icon="LOCKED" if settings.lock_chroma else "UNLOCKED")

        stale = bake_state.changes(context.scene) if bake_state.is_baked(settings) else []
        if stale:  # the old summary would pretend to be current: say what changed instead
            box = layout.box()
            box.alert = True
            box.label(text="The bake is out of date:", icon="ERROR")
            for change in stale:  # "the scene is now 30 fps, the curves were baked at 24 fps": wrapped at the comma
                lines(box, context, change, beside_px=10)  # the box's own margin
            box.operator("latentwalk.bake", text="Re-bake", icon="FILE_REFRESH")
            lines(box, context, "Edited curves are kept and retimed", beside_px=10)
        baking = jobs.running("bake")
        if baking is not None:  # its step, and Cancel Bake where Bake Curves was (Esc does the same)
            lines(layout, context, baking.status_line().replace("Latent Walk bake: ", "Baking: "), icon="GRAPH")
        column = layout.column(align=True)
        column.scale_y = 1.4
        if baking is not None:
            column.operator("latentwalk.bake_cancel", icon="CANCEL")
        else:
            column.operator("latentwalk.bake", icon="GRAPH")
        column.operator("latentwalk.show_curves", icon="FCURVE")
        if settings.last_bake_summary and not stale:
            lines(layout, context, settings.last_bake_summary, icon="CHECKMARK")


class _WalkPanel:
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Walk"

    def draw(self, context):
        layout = self.layout
        walk = context.scene.latentwalk.walk
        presets.draw_walk_menu(layout)
        layout.prop(walk, "mode", expand=True)
        split = layout.split(factor=LABEL_FACTOR, align=True)
        split.label(text="Generator")
        row = split.row(align=True)
        row.prop(walk, "model", text="")
        row.operator("latentwalk.choose_model_file", text="", icon="FILE")  # a file, beside the folder icon
        kind = models.stylegan_kind(walk)
        if kind:
            layout.label(text=f"{kind} model file", icon="CHECKMARK")
        elif models.is_stylegan_file(walk):  # a file that is not there: still StyleGAN's settings, and why
            kind = "StyleGAN"
            layout.label(text="File not found: pick it again", icon="ERROR")
        models.draw_stand_in_warning(layout, context, preview=True)
        column = layout.column(align=True)
        column.prop(walk, "truncation", text="Psi" if kind else "Truncation")
        column.prop(walk, "pulse")
        if walk.mode == "travel":
            column.prop(walk, "speed")
        column.prop(walk, "jitter")
        layout.prop(walk, "seed")
        if kind:
            self.draw_stylegan(layout, walk, kind)
        else:
            labelled(layout, walk, "class_mode", "Classes", expand=True)
            row = layout.row()
            row.template_list("LATENTWALK_UL_classes", "", walk, "classes", walk, "active_class_index", rows=4)
            buttons = row.column(align=True)
            buttons.operator("latentwalk.class_add", icon="ADD", text="")
            buttons.operator("latentwalk.class_remove", icon="REMOVE", text="")
            buttons.operator("latentwalk.classes_default", icon="PRESET", text="")
        layout.prop(walk, "class_smoothing_ms", text="Smoothing (ms)")  # under the palette: its smoothing
        if 0 <= context.scene.latentwalk.active_band_index < len(context.scene.latentwalk.bands):
            band = context.scene.latentwalk.bands[context.scene.latentwalk.active_band_index]
            layout.prop(band, "weight", text=f"{band.title} Weight")
        layout.prop(walk, "preview_width")
        labelled(layout, walk, "preview_folder", "Preview")
        layout.operator("latentwalk.preview", icon="SEQ_PREVIEW")  # on Render > Device: one menu for both


    @staticmethod
    def draw_stylegan(layout, walk, kind):
        """StyleGAN's own settings: the palette of seeds, the latent space, and the model's own effect."""
        labelled(layout, walk, "latent_space", "Space", expand=True)
        labelled(layout, walk, "class_mode", "Palette", expand=True)
        labelled(layout, walk, "palette_seeds", "Seeds")
        column = layout.column(align=True)
        if kind != "StyleGAN2":  # StyleGAN3's signature effect: the input rotated and translated by curves
            column.prop(walk, "rotation_deg")
            column.prop(walk, "translate_x")
            column.prop(walk, "translate_y")
        if kind != "StyleGAN3":  # ("StyleGAN": a file not found, either kind)
            column.prop(walk, "noise_strength")
            column.prop(walk, "noise_pulse")


class _RenderPanel:
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Render"

    def draw(self, context):
        layout = self.layout
        diffusion = context.scene.latentwalk.diffusion
        presets.draw_menu(layout)
        labelled(layout, diffusion, "model", "Model")
        models.draw_stand_in_warning(layout, context)
        labelled(layout, diffusion, "prompt", "Prompt")
        column = layout.column(align=True)
        column.label(text="Or markers \"prompt: ...\"", icon="MARKER_HLT")
        column.prop(diffusion, "prompt_blend_ms", text="Blend (ms)")  # how a marker's prompt fades in
        labelled(layout, diffusion, "negative_prompt", "Negative")
        column = layout.column(align=True)
        column.prop(diffusion, "strength")
        column.prop(diffusion, "guidance")
        column.prop(diffusion, "steps")
        column.prop(diffusion, "seed")
        labelled(layout, diffusion, "tiny_vae", "Tiny VAE")
        layout.prop(diffusion, "batch_size")
        labelled(layout, context.scene.latentwalk.walk, "device", "Device")
        labelled(layout, diffusion, "devices", "Devices")
        labelled(layout, diffusion, "output_folder", "Output")
        checked = encode.last_check(context.scene)
        row = layout.row(align=True)
        if checked is None:
            lines(row, context, "Frames: not checked yet", icon="QUESTION", beside_px=25)
        elif not checked.still_applies(context.scene):  # a green count after an fps change would mislead
            lines(row, context, f"Frames: checked {checked.when}, before the timing or the bake changed",
                  icon="QUESTION", beside_px=25)
        else:  # "238 of 240 frames" / "current (1 stale, 1 missing)" / "checked 16:02:11"
            summary, parenthesis, detail = checked.status.summary().partition(" (")
            column = row.column(align=True)
            texts = [summary] + ([parenthesis.strip() + detail] if detail else []) + [f"checked {checked.when}"]
            width = line_width(context, beside_px=25)
            for index, line in enumerate(part for text in texts for part in wrap(context, text, width)):
                icon = ("CHECKMARK" if checked.status.complete else "ERROR") if index == 0 else "BLANK1"
                column.label(text=line, icon=icon)
        row.operator("latentwalk.check_frames", text="", icon="FILE_REFRESH")
        job = jobs.running("render")
        if job is not None:
            lines(layout, context, job.status_line(), icon="RENDER_ANIMATION")
            layout.operator("latentwalk.render_cancel", icon="CANCEL")
        else:
            column = layout.column(align=True)
            column.scale_y = 1.4
            column.operator("latentwalk.render", icon="RENDER_ANIMATION")
            column.operator("latentwalk.encode_video", icon="FILE_MOVIE")
        layout.operator("latentwalk.release_models", icon="X")


class _ModelsPanel:
    """The models the render uses and the catalogue: on this machine or not, size, where (the folder
    button's tooltip), and Download for a missing one."""

    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Models"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        listing = models.listing()
        row = layout.row(align=True)
        row.label(text="Not checked yet" if listing is None else f"Checked {listing['when']}", icon="INFO")
        row.operator("latentwalk.models_refresh", text="", icon="FILE_REFRESH")
        models.draw_stand_ins(layout, context)  # Use Stand-in Models, or the warning while they are in use
        if listing is not None and listing["error"]:
            import textwrap

            column = layout.column(align=True)
            lines = textwrap.wrap(listing["error"], 34)  # the default sidebar's width
            for index, line in enumerate(lines[:5]):
                column.label(text=line + (" ..." if index == 4 and len(lines) > 5 else ""),
                             icon="ERROR" if index == 0 else "BLANK1")
        job = jobs.running("download")
        if job is not None:
            layout.label(text=job.status_line().replace("Latent Walk: ", ""), icon="IMPORT")
            layout.operator("latentwalk.model_download_cancel", icon="CANCEL")
        if listing is None:
            return
        in_use = {name.strip() for name, _ in models.models_in_use(context.scene)}
        for title, states in (("This scene", [s for s in listing["states"] if s.name in in_use]),
                              ("Catalogue", [s for s in listing["states"] if s.name not in in_use])):
            if not states:
                continue
            column = layout.column(align=True)
            column.label(text=title)
            for state in states:
                self.draw_model(column.box().row(align=True), state)

    @staticmethod
    def draw_model(row, state):
        models.draw_model_row(row, state)  # the label keeps its width; the size is in the button's tooltip


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
        for label in modulation.self_reading_drivers(context.scene):  # Blender reports a dependency cycle
            box = layout.box()
            box.alert = True
            lines(box, context, f"The driver on {label} reads this scene's curves: Blender reports a "
                                "dependency cycle and may lag a frame. Remove it and add a modulation.",
                  icon="ERROR", beside_px=10)


class LATENTWALK_PT_sequencer_modulation(_ModulationPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_sequencer_modulation"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_parent_id = "LATENTWALK_PT_sequencer_render"


class LATENTWALK_PT_graph_modulation(_ModulationPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_graph_modulation"
    bl_space_type = "GRAPH_EDITOR"
    bl_parent_id = "LATENTWALK_PT_graph_render"


class _SectionsPanel:
    """The song's structure: section and drop markers, a look (prompt, seed) per section label, Snap Markers to
    Bars, and the structure curves' locks."""

    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_label = "Sections"

    def draw(self, context):
        sections.draw(self.layout, context, labelled)


class LATENTWALK_PT_sequencer_sections(_SectionsPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_sequencer_sections"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_parent_id = "LATENTWALK_PT_sequencer"


class LATENTWALK_PT_graph_sections(_SectionsPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_graph_sections"
    bl_space_type = "GRAPH_EDITOR"
    bl_parent_id = "LATENTWALK_PT_graph"


class LATENTWALK_PT_sequencer_models(_ModelsPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_sequencer_models"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_parent_id = "LATENTWALK_PT_sequencer"


class LATENTWALK_PT_graph_models(_ModelsPanel, bpy.types.Panel):
    bl_idname = "LATENTWALK_PT_graph_models"
    bl_space_type = "GRAPH_EDITOR"
    bl_parent_id = "LATENTWALK_PT_graph"


classes = (LATENTWALK_UL_bands, LATENTWALK_PT_sequencer, LATENTWALK_PT_graph,
           LATENTWALK_PT_sequencer_walk, LATENTWALK_PT_graph_walk,
           LATENTWALK_PT_sequencer_render, LATENTWALK_PT_graph_render,
           LATENTWALK_PT_sequencer_modulation, LATENTWALK_PT_graph_modulation,
           LATENTWALK_PT_sequencer_sections, LATENTWALK_PT_graph_sections,  # under Render, above Models (the last)
           LATENTWALK_PT_sequencer_models, LATENTWALK_PT_graph_models)
