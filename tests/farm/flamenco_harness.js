// Flamenco's job-compiler API as recorded calls, to run a job type's compileJob() outside a
// Flamenco Manager.
//
//   node tests/farm/flamenco_harness.js JOB_FILE.js SETTINGS.json   -> the compiled job as JSON
//
// What a job file sees, as the Manager (goja) gives it: the globals `author` (Task, Command),
// `frameChunker(frames, chunkSize)`, `path` and `print`; `job.settings` and `job.addTask`.
// frameChunker behaves like the Manager's Go implementation: the frames ("1-10,20..25,40",
// spaces allowed) are spelled out, de-duplicated and sorted, cut into runs of chunkSize frames,
// and each run is written back as ranges, where a run of two frames is written "A,B" and
// a run of three or more "A-B".
"use strict";

const fs = require("node:fs");
const nodePath = require("node:path");
const vm = require("node:vm");

function explodeFrames(frames) {
    const text = `${frames}`.trim();
    if (text === "") {
        throw new Error(`invalid range "${frames}": empty range`);
    }
    const found = new Set();
    for (const part of text.replaceAll("..", "-").split(",")) {
        const ends = part.split("-").map((value) => value.trim());
        if (ends.length > 2 || ends.some((value) => !/^[+-]?\d+$/.test(value))) {
            throw new Error(`invalid range "${frames}": ${part}`);
        }
        const first = parseInt(ends[0], 10);
        const last = parseInt(ends[ends.length - 1], 10);
        for (let frame = first; frame <= last; frame++) {
            found.add(frame);
        }
    }
    return [...found].sort((a, b) => a - b);
}

function mergeFrames(frames) {
    const parts = [];
    const close = (first, last) => {
        if (first === last) {
            parts.push(`${first}`);
        } else if (first + 1 === last) {
            parts.push(`${first}`, `${last}`);
        } else {
            parts.push(`${first}-${last}`);
        }
    };
    let first = frames[0];
    let previous = frames[0];
    for (const frame of frames.slice(1)) {
        if (frame > previous + 1) {
            close(first, previous);
            first = frame;
        }
        previous = frame;
    }
    close(first, previous);
    return parts.join(",");
}

function frameChunker(frames, chunkSize) {
    if (!(chunkSize >= 1)) {
        throw new Error(`invalid chunk size, must be positive number: ${chunkSize}`);
    }
    const all = explodeFrames(frames);
    const chunks = [];
    for (let start = 0; start < all.length; start += chunkSize) {
        chunks.push(mergeFrames(all.slice(start, start + chunkSize)));
    }
    return chunks;
}

// The recorded job: tasks in the order added, each with its commands and dependencies by name.
function compileJob(jobFile, settings) {
    const printed = [];
    const author = {
        Task(name, type) {
            const task = { name, type, commands: [], dependencies: [] };
            return {
                recorded: task,
                addCommand(command) { task.commands.push(command); },
                addDependency(other) { task.dependencies.push(other.recorded.name); },
            };
        },
        Command(name, parameters) {
            return { name, parameters: JSON.parse(JSON.stringify(parameters)) };
        },
    };
    const path = {
        join: (...parts) => nodePath.posix.join(...parts),
        dirname: (p) => nodePath.posix.dirname(p),
        basename: (p) => nodePath.posix.basename(p),
        stem: (p) => nodePath.posix.parse(p).name,
    };
    const context = vm.createContext({ author, frameChunker, path, print: (...a) => printed.push(a.join(" ")) });
    vm.runInContext(fs.readFileSync(jobFile, "utf8"), context, { filename: jobFile });
    const jobType = vm.runInContext("JOB_TYPE", context);
    const filled = {};
    for (const setting of jobType.settings) {
        if (setting.default !== undefined) {
            filled[setting.key] = setting.default;
        }
    }
    Object.assign(filled, settings);
    for (const setting of jobType.settings) {
        if (setting.required && (filled[setting.key] === undefined || filled[setting.key] === "")) {
            throw new Error(`setting ${setting.key} is required`);
        }
    }
    const tasks = [];
    const job = { settings: filled, addTask(task) { tasks.push(task.recorded); } };
    vm.runInContext("compileJob", context)(job);
    return { jobType: JSON.parse(JSON.stringify(jobType)), settings: filled, tasks, printed };
}

module.exports = { compileJob, frameChunker, explodeFrames };

if (require.main === module) {
    const [jobFile, settingsFile] = process.argv.slice(2);
    const settings = JSON.parse(fs.readFileSync(settingsFile, "utf8"));
    process.stdout.write(JSON.stringify(compileJob(jobFile, settings)) + "\n");
}
