"""A real HTTP server on 127.0.0.1 that serves models as the Hugging Face hub and BigGAN's archive do.

Enough of the hub's API for huggingface_hub's own snapshot_download / hf_hub_download (pointed at it
with HF_ENDPOINT): model info with siblings and the commit sha, the recursive file tree, and resolve
URLs with ETag / X-Repo-Commit / Content-Length and Range. BigGAN's archive is plain files at URLs
(``/biggan/biggan-deep-256-pytorch_model.bin``), with ETag and Range, as S3 serves them.

Faults a test can ask for: ``cut_after[path] = n`` closes the connection after n bytes of the next
GET of that file (it promised more); ``delay_s`` slows every body chunk, so a cancel lands mid-file.
Every request is recorded as (method, path, Range header).
"""

import hashlib
import http.server
import json
import os
import threading
import time
import urllib.parse

CHUNK = 4096


class ModelServer:
    def __init__(self):
        self.repos = {}  # repo id -> (commit sha, {path in repo: bytes})
        self.files = {}  # plain URL path -> bytes (BigGAN's archive)
        self.requests = []
        self.cut_after = {}
        self.delay_s = 0.0
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add_repo(self, repo_id, folder):
        """Serve every file under ``folder`` as the repository ``repo_id`` at one commit."""
        files = {}
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                files[os.path.relpath(path, folder).replace(os.sep, "/")] = open(path, "rb").read()
        listing = sorted((path, hashlib.sha1(data).hexdigest()) for path, data in files.items())
        commit = hashlib.sha1(repr(listing).encode()).hexdigest()
        self.repos[repo_id] = (commit, files)
        return commit

    def ranges(self, suffix):
        """The Range headers of the GETs of the file whose path ends with ``suffix`` (None: no Range)."""
        return [r for method, path, r in self.requests if method == "GET" and path.endswith(suffix)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _etag(data):
    return '"' + hashlib.sha256(data).hexdigest() + '"'


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state = None

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _json(self, value):
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self):
        data = b'{"error": "Repository Not Found"}'
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, body):
        state = self.server_state
        path = urllib.parse.urlparse(self.path).path
        state.requests.append((self.command, path, self.headers.get("Range")))
        if path in state.files:
            return self._send_file(path, state.files[path], {}, body)
        if path.startswith("/api/models/"):
            return self._api(path[len("/api/models/"):])
        for repo_id, (commit, files) in state.repos.items():
            prefix = f"/{repo_id}/resolve/"
            if path.startswith(prefix):
                revision, _, name = path[len(prefix):].partition("/")
                name = urllib.parse.unquote(name)
                if revision not in ("main", commit) or name not in files:
                    return self._not_found()
                data = files[name]
                headers = {"X-Repo-Commit": commit, "X-Linked-Etag": _etag(data), "X-Linked-Size": str(len(data))}
                return self._send_file(path, data, headers, body)
        self._not_found()

    def _api(self, rest):
        for repo_id, (commit, files) in self.server_state.repos.items():
            if rest in (repo_id, f"{repo_id}/revision/main", f"{repo_id}/revision/{commit}"):
                siblings = [{"rfilename": name, "size": len(data), "blobId": hashlib.sha1(data).hexdigest(),
                             "lfs": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}}
                            for name, data in sorted(files.items())]
                return self._json({"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                                   "siblings": siblings, "tags": [], "downloads": 0, "likes": 0})
            for revision in ("main", commit):
                if rest.startswith(f"{repo_id}/tree/{revision}"):
                    return self._json([{"type": "file", "path": name, "size": len(data),
                                        "oid": hashlib.sha1(data).hexdigest(),
                                        "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                                "pointerSize": 130}}
                                       for name, data in sorted(files.items())])
        self._not_found()

    def _send_file(self, path, data, headers, body):
        state = self.server_state
        start = 0
        requested = self.headers.get("Range")
        if requested and requested.startswith("bytes="):
            start = int(requested[len("bytes="):].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("ETag", _etag(data))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not body:
            return
        cut = state.cut_after.pop(path, None) if body else None
        end = len(data) if cut is None else min(len(data), start + cut)
        for offset in range(start, end, CHUNK):
            if state.delay_s:
                time.sleep(state.delay_s)
            try:
                self.wfile.write(data[offset:min(end, offset + CHUNK)])
                self.wfile.flush()
            except OSError:
                return
        if cut is not None:  # promised len(data) - start bytes, sent fewer: a dropped connection
            self.close_connection = True
            self.connection.shutdown(2)
