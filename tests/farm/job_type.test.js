// The Latent Walk Flamenco job type, compiled with Flamenco's job-compiler API as recorded calls
// (flamenco_harness.js):  node --test tests/farm/
"use strict";

const assert = require("node:assert/strict");
const nodePath = require("node:path");
const test = require("node:test");

const { compileJob, frameChunker, explodeFrames } = require("./flamenco_harness.js");

const JOB_FILE = nodePath.join(__dirname, "..", "..", "blender_latentwalk", "farm", "latentwalk_flamenco.js");
const SETTINGS = {
    blendfile: "/shared/song.blend", output_folder: "/shared/frames", video_path: "/shared/song.mp4",
    biggan: "biggan-deep-256", sd: "stabilityai/sd-turbo",
};

// What the render script reads from --frames: the union of the parts (the add-on's frame_ranges.parse).
function framesOf(text) {
    return explodeFrames(text);
}

function argsAfterDashes(command) {
    const args = command.parameters.args;
    return args.slice(args.indexOf("--") + 1);
}

function option(args, name) {
    const at = args.indexOf(name);
    return at < 0 ? undefined : args[at + 1];
}

test("the harness's chunker splits as Flamenco's does, two-frame runs as 'A,B'", () => {
    assert.deepEqual(frameChunker("1-10", 4), ["1-4", "5-8", "9,10"]);
    assert.deepEqual(frameChunker("1-3,5,8..9", 2), ["1,2", "3,5", "8,9"]);
    assert.deepEqual(frameChunker("1-3,5,7-20", 5), ["1-3,5,7", "8-12", "13-17", "18-20"]);
    assert.deepEqual(frameChunker(" 4, 1-2 ,3", 10), ["1-4"]);
    assert.throws(() => frameChunker("1-3,x", 2), /invalid range "1-3,x": x/);
});

const CASES = [
    ["1-240", 64], ["1-240", 1], ["1-240", 240], ["1-240", 500], ["1-7200", 97],
    ["1-3,5", 2], ["10-19,25", 4], ["1-30,41-50,77", 7], ["5..9,2", 3],
];

for (const [frames, chunkSize] of CASES) {
    test(`frames ${frames} in chunks of ${chunkSize}: every frame once, encode after every chunk`, () => {
        const job = compileJob(JOB_FILE, { ...SETTINGS, frames, chunk_size: chunkSize });
        const renders = job.tasks.filter((task) => task.name.startsWith("render-"));
        const encode = job.tasks[job.tasks.length - 1];
        assert.equal(job.tasks.length, renders.length + 1);
        const seen = [];
        for (const task of renders) {
            assert.equal(task.type, "latentwalk-gpu");
            assert.equal(task.commands.length, 1);
            assert.deepEqual(task.dependencies, []);
            const chunk = option(argsAfterDashes(task.commands[0]), "--frames");
            assert.equal(task.name, `render-${chunk}`);
            const chunkFrames = framesOf(chunk);
            assert.ok(chunkFrames.length <= chunkSize, `${chunk} holds more than ${chunkSize} frames`);
            seen.push(...chunkFrames);
        }
        assert.deepEqual([...seen].sort((a, b) => a - b), framesOf(frames), "chunks cover every frame once");
        assert.equal(new Set(seen).size, seen.length, "no frame in two chunks");
        assert.equal(encode.name, "encode-video");
        assert.equal(encode.type, renders[0].type);  // a worker with the models checks the frames
        assert.deepEqual([...encode.dependencies].sort(), renders.map((task) => task.name).sort());
    });
}

test("chunk and encode commands are the documented headless command", () => {
    const job = compileJob(JOB_FILE, { ...SETTINGS, frames: "1-100", chunk_size: 40, batch_size: 8, device: "cuda",
                                       engine_python: "/opt/latentwalk/bin/python" });
    for (const task of job.tasks) {
        const [command] = task.commands;
        assert.equal(command.name, "blender-render");
        assert.equal(command.parameters.exe, "{blender}");
        assert.equal(command.parameters.exeArgs, "{blenderArgs}");  // the Manager's "-b -y"
        assert.equal(command.parameters.blendfile, "/shared/song.blend");
        const args = command.parameters.args;
        assert.deepEqual(args.slice(0, 3), ["--python-exit-code", "1", "--python-expr"]);
        assert.match(args[3], /addon_utils\.modules\(\)/);
        assert.match(args[3], /'scripts', 'render\.py'/);
        assert.equal(args[4], "--");
        const after = argsAfterDashes(command);
        assert.equal(option(after, "--output"), "/shared/frames");
        assert.equal(option(after, "--generator"), "biggan-deep-256");
        assert.equal(option(after, "--sd"), "stabilityai/sd-turbo");
        assert.equal(option(after, "--engine-python"), "/opt/latentwalk/bin/python");
    }
    const chunk = argsAfterDashes(job.tasks[0].commands[0]);
    assert.deepEqual(chunk.slice(-6), ["--frames", "1-40", "--batch-size", "8", "--device", "cuda"]);
    assert.ok(!chunk.includes("--encode") && !chunk.includes("--save"), "a chunk keeps its frames only");
    const encode = argsAfterDashes(job.tasks[job.tasks.length - 1].commands[0]);
    assert.deepEqual(encode.slice(-5), ["--frames", "1-100", "--no-render", "--encode", "/shared/song.mp4"]);
});

test("batch size 0 (the default, as the add-on's) passes none: the folder's recorded batch size holds", () => {
    const job = compileJob(JOB_FILE, { ...SETTINGS, frames: "11-100", chunk_size: 40 });
    for (const task of job.tasks.slice(0, -1)) {
        const args = argsAfterDashes(task.commands[0]);
        assert.ok(!args.includes("--batch-size"), args.join(" "));
        assert.equal(option(args, "--device"), "cuda");
    }
});

test("a render script on the shared storage is run with -P; a song is passed with --audio", () => {
    const job = compileJob(JOB_FILE, { ...SETTINGS, frames: "1-10", render_script: "/shared/latentwalk/render.py",
                                       audio: "/shared/song.wav", gpu_task_type: "cuda-render" });
    const args = job.tasks[0].commands[0].parameters.args;
    assert.deepEqual(args.slice(0, 5), ["--python-exit-code", "1", "-P", "/shared/latentwalk/render.py", "--"]);
    assert.equal(option(args, "--audio"), "/shared/song.wav");
    assert.equal(job.tasks[0].type, "cuda-render");
});

test("bad settings are refused when the job is submitted", () => {
    assert.throws(() => compileJob(JOB_FILE, { ...SETTINGS, frames: "1-10", chunk_size: 0 }), /chunk_size 0/);
    assert.throws(() => compileJob(JOB_FILE, { ...SETTINGS, frames: "1-10", batch_size: -1 }), /batch_size -1/);
    assert.throws(() => compileJob(JOB_FILE, { ...SETTINGS, frames: "1-10", video_path: "/shared/a.mov" }),
                  /give a path ending in \.mp4/);
    assert.throws(() => compileJob(JOB_FILE, { ...SETTINGS, frames: "" }), /frames is required/);
});
