// SPDX-License-Identifier: GPL-3.0-or-later
//
// Latent Walk job type for Flamenco (https://flamenco.blender.org/).
//
// Install: copy this file into the Flamenco Manager's `scripts/` folder (next to the
// manager's executable) and restart the Manager; the job type "Latent Walk" then shows in
// Blender's Flamenco panel. Every worker that runs it needs Blender with the Latent Walk
// add-on installed (or `render_script` set to the add-on's scripts/render.py on the shared
// storage), and a Python with torch for the render worker (the add-on's Engine Python
// preference, or the `engine_python` setting below).
//
// The job compiles to:
// - one task per chunk of frames, of task type `gpu_task_type` (default "latentwalk-gpu":
//   only workers that list it in their `task_types` take them), running the add-on's
//   headless render script with `--frames CHUNK`. A chunk keeps its frames only; a retried
//   chunk keeps the frames that are already current and renders the rest;
// - a last task "encode-video" of the same task type (a worker that rendered has the same
//   models and Engine Python, which the frame check needs: each frame's key names the models
//   as that worker's caches hold them), depending on every chunk, that renders nothing (`--no-render`): it checks that every frame is current for
//   the scene, lays the frames on the Sequencer above the song and encodes the video with
//   sound through Blender's FFmpeg. A missing or stale frame fails it with the frame named.

const LATENTWALK_ADDON = "blender_latentwalk";

// Runs <add-on folder>/scripts/render.py of the Latent Walk add-on installed in the worker's
// Blender (a legacy add-on or an extension), wherever that folder is on the worker.
const FIND_AND_RUN_RENDER_SCRIPT = [
    "import addon_utils, os, runpy, sys",
    `found = [m.__file__ for m in addon_utils.modules() if m.__name__.rpartition('.')[2] == '${LATENTWALK_ADDON}']`,
    "if not found:",
    "    sys.exit('error: the Latent Walk add-on is not installed in this Blender on this worker: install it, or "
        + "set the job setting render_script to its scripts/render.py on the shared storage.')",
    "runpy.run_path(os.path.join(os.path.dirname(found[0]), 'scripts', 'render.py'), run_name='__main__')",
].join("\n");

// The Output folder as the add-on resolves it in the submitting Blender ("//" and the
// {blend_name} / {scene_name} tokens), through the add-on as that Blender enabled it (a legacy
// add-on or an extension), so the chunks write where Check Frames and Encode Video look.
const ADDON_IN_SUBMITTING_BLENDER = "next(m for n, m in __import__('sys').modules.items() "
    + `if n.rpartition('.')[2] == '${LATENTWALK_ADDON}' and hasattr(m, 'blender'))`;
const OUTPUT_FOLDER_EVAL = `${ADDON_IN_SUBMITTING_BLENDER}.blender.output.resolve_folder(`
    + "C.scene.latentwalk.diffusion.output_folder, 'Output folder', C.scene)";
// The frames Render Frames renders: from the song's first frame (or the scene's start, if later) to the
// scene's end. A render refuses frames before the song's first frame: it has no music there.
const FRAMES_EVAL = `'%d-%d' % ${ADDON_IN_SUBMITTING_BLENDER}.blender.sampling.render_range(C.scene)`;

const JOB_TYPE = {
    label: "Latent Walk",
    description: "Render a Latent Walk music video (BigGAN + Stable Diffusion img2img) in chunks on GPU "
        + "workers, then encode it with the song",
    settings: [
        { key: "frames", type: "string", required: true,
          eval: FRAMES_EVAL,
          description: "Blender frames to render, e.g. '1-7200' (default: as Render Frames renders them, from the "
              + "song's first frame to the scene's end)" },
        { key: "chunk_size", type: "int32", default: 64,
          description: "Frames per task; a multiple of the batch size wastes no work at chunk edges" },
        { key: "output_folder", type: "string", subtype: "dir_path", required: true,
          eval: OUTPUT_FOLDER_EVAL,
          description: "Folder for the frames, on the shared storage (every chunk writes into it)" },
        { key: "biggan", type: "string", required: true, default: "biggan-deep-256",
          eval: "C.scene.latentwalk.walk.model",
          description: "The generator: a BigGAN name (biggan-deep-256...) or model folder, or a StyleGAN .pkl / .pt file, that every worker can read" },
        { key: "sd", type: "string", required: true, default: "stabilityai/sd-turbo",
          eval: "C.scene.latentwalk.diffusion.model or 'none'",
          description: "img2img model: a hub id in the workers' cache, a folder, or none" },
        { key: "batch_size", type: "int32", default: 0,
          eval: "C.scene.latentwalk.diffusion.batch_size",
          description: "Frames per batch, as the add-on's Batch Size (0: the Output folder's recorded batch size, "
              + "else the device's default): the same on every worker, so every frame has the bytes of one render" },
        { key: "video_path", type: "string", subtype: "file_path", required: true,
          eval: `__import__('os').path.join(${OUTPUT_FOLDER_EVAL}, __import__('os').path.splitext(`
              + "__import__('os').path.basename(__import__('bpy').data.filepath))[0] + '.mp4')",
          description: "The video (.mp4, H.264 + AAC) the last task writes; by default <Output folder>/<blend "
              + "name>.mp4, where Encode Video in Blender writes it" },
        { key: "device", type: "string", default: "cuda", choices: ["cuda", "auto", "cpu", "mps"],
          description: "Where the chunks render" },
        { key: "gpu_task_type", type: "string", default: "latentwalk-gpu",
          description: "Task type of the render chunks: only workers with it in their task_types take them" },
        { key: "audio", type: "string", subtype: "file_path", default: "",
          description: "The song on the shared storage (empty: the one the .blend was baked with)" },
        { key: "engine_python", type: "string", default: "",
          description: "The workers' Python with torch for the render (empty: the add-on's Engine Python preference)" },
        { key: "render_script", type: "string", default: "",
          description: "The add-on's scripts/render.py (empty: the one in the add-on installed on the worker)" },
        { key: "blendfile", type: "string", required: true, visible: "web",
          description: "The .blend file to render (baked)" },
    ],
};

function compileJob(job) {
    const settings = job.settings;
    checkSettings(settings);
    const chunks = frameChunker(settings.frames, settings.chunk_size);
    const encodeTask = author.Task("encode-video", settings.gpu_task_type);
    encodeTask.addCommand(blenderCommand(settings, [
        "--frames", `${settings.frames}`, "--no-render", "--encode", settings.video_path,
    ]));
    for (const chunk of chunks) {
        const task = author.Task(`render-${chunk}`, settings.gpu_task_type);
        const batch = settings.batch_size > 0 ? ["--batch-size", `${settings.batch_size}`] : [];
        task.addCommand(blenderCommand(settings, ["--frames", chunk].concat(batch, ["--device", settings.device])));
        job.addTask(task);
        encodeTask.addDependency(task);
    }
    job.addTask(encodeTask);
}

function checkSettings(settings) {
    if (!(settings.chunk_size >= 1)) {
        throw `chunk_size ${settings.chunk_size}: give 1 or more frames per task`;
    }
    if (!(settings.batch_size >= 0)) {
        throw `batch_size ${settings.batch_size}: give 1 or more, or 0 for the folder's (the same for every chunk)`;
    }
    if (!`${settings.video_path}`.toLowerCase().endsWith(".mp4")) {
        throw `video_path '${settings.video_path}': the video is an MP4 (H.264 + AAC); give a path ending in .mp4`;
    }
}

// The headless command: blender -b FILE.blend --python-exit-code 1 (-P SCRIPT | --python-expr FIND) -- ARGS
function blenderCommand(settings, extra) {
    const script = settings.render_script
        ? ["-P", settings.render_script]
        : ["--python-expr", FIND_AND_RUN_RENDER_SCRIPT];
    const shared = ["--output", settings.output_folder, "--generator", settings.biggan, "--sd", settings.sd];
    if (settings.audio) {
        shared.push("--audio", settings.audio);
    }
    if (settings.engine_python) {
        shared.push("--engine-python", settings.engine_python);
    }
    return author.Command("blender-render", {
        exe: "{blender}",
        exeArgs: "{blenderArgs}",
        argsBefore: [],
        blendfile: settings.blendfile,
        args: ["--python-exit-code", "1"].concat(script, ["--"], shared, extra),
    });
}
