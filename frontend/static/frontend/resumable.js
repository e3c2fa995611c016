// Resumable submission uploads (tus 1.0.0, see docs/transfers.md) for forms marked
// data-resumable. The file goes up in PATCHes of data-part-bytes; the server keeps the
// offset, and this browser keeps the upload's address in localStorage under the file's
// name, size and mtime, so a dropped connection or a reloaded page goes on from where the
// server stopped. Once the bytes are up, the form is sent with the upload's id instead of
// the file. Without this script the form is an ordinary upload.
"use strict";

(function () {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  // SHA-256 fed in pieces: crypto.subtle.digest wants the whole file in memory.
  function Sha256() {
    this.h = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this.buf = new Uint8Array(64);
    this.used = 0;
    this.total = 0;
    this.w = new Uint32Array(64);
  }
  Sha256.prototype.block = function (d, o) {
    const w = this.w;
    const h = this.h;
    for (let i = 0; i < 16; i++) {
      const j = o + 4 * i;
      w[i] = (d[j] << 24) | (d[j + 1] << 16) | (d[j + 2] << 8) | d[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], e = h[4], f = h[5], g = h[6], k = h[7], dd = h[3];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (dd + t1) | 0; dd = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += dd; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  };
  Sha256.prototype.update = function (bytes) {
    let i = 0;
    this.total += bytes.length;
    if (this.used) {
      while (this.used < 64 && i < bytes.length) this.buf[this.used++] = bytes[i++];
      if (this.used < 64) return;
      this.block(this.buf, 0);
      this.used = 0;
    }
    for (; i + 64 <= bytes.length; i += 64) this.block(bytes, i);
    while (i < bytes.length) this.buf[this.used++] = bytes[i++];
  };
  Sha256.prototype.hex = function () {
    const bits = this.total * 8;
    const pad = new Uint8Array((this.used < 56 ? 56 : 120) - this.used + 8);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(pad.length - 4, bits >>> 0);
    this.update(pad);
    return Array.from(this.h, function (x) { return x.toString(16).padStart(8, "0"); }).join("");
  };

  async function sha256OfFile(file, onProgress) {
    const sha = new Sha256();
    const step = 8 * 1024 * 1024;
    for (let offset = 0; offset < file.size; offset += step) {
      const piece = await file.slice(offset, offset + step).arrayBuffer();
      sha.update(new Uint8Array(piece));
      onProgress(Math.min(offset + step, file.size));
    }
    return sha.hex();
  }

  // tus checksum: the server keeps a part only if it arrives unchanged. crypto.subtle
  // exists in secure contexts only (https, localhost); elsewhere the whole file's sha256,
  // checked when the upload finishes, is the only check.
  async function checksum(piece) {
    if (!(window.crypto && window.crypto.subtle)) return null;
    const digest = new Uint8Array(await window.crypto.subtle.digest("SHA-256", await piece.arrayBuffer()));
    return "sha256 " + btoa(String.fromCharCode.apply(null, digest));
  }

  function b64(text) {
    return btoa(String.fromCharCode.apply(null, new TextEncoder().encode(String(text))));
  }

  function csrf(form) {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function request(method, url, headers, body, onProgress) {
    return new Promise(function (resolve) {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      if (onProgress) {
        xhr.upload.addEventListener("progress", function (e) { onProgress(e.loaded); });
      }
      xhr.addEventListener("load", function () { resolve(xhr); });
      xhr.addEventListener("error", function () { resolve(null); });
      xhr.addEventListener("abort", function () { resolve(null); });
      xhr.send(body === undefined ? null : body);
    });
  }

  // app.js's translated texts (loaded first: both are deferred, app.js comes earlier).
  function t(key, values) { return window.evalserverText ? window.evalserverText(key, values) : key; }

  function detail(xhr) {
    if (!xhr) return t("connection_dropped");
    try {
      return JSON.parse(xhr.responseText).detail || "HTTP " + xhr.status;
    } catch (err) {
      return "HTTP " + xhr.status;
    }
  }

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function bind(form) {
    const input = form.querySelector("input[type=file]");
    const bar = form.querySelector("progress");
    const text = form.querySelector("[data-progress-text]");
    const button = form.querySelector("button[type=submit]");
    const note = document.querySelector("[data-resume-note]");
    const result = document.querySelector(form.dataset.result || "#upload-result");
    const prefix = "evalserver-upload:" + form.dataset.challenge + ":" + form.dataset.phase + ":";
    const tus = { "Tus-Resumable": "1.0.0", "X-CSRFToken": csrf(form) };

    function say(message) { if (text) text.textContent = message; }
    function fail(message) {
      say("");
      result.innerHTML = "";
      const p = document.createElement("p");
      p.className = "flash error";
      p.textContent = message;
      result.appendChild(p);
      button.disabled = false;
    }
    function show(done, total, key) {
      bar.hidden = false;
      bar.value = total ? Math.floor((100 * done) / total) : 100;
      say(t(key, { percent: bar.value }));
    }

    // After a reload: say which upload can go on.
    const pending = Object.keys(localStorage).filter(function (k) { return k.indexOf(prefix) === 0; });
    if (note && pending.length) {
      const saved = JSON.parse(localStorage.getItem(pending[0]) || "{}");
      note.hidden = false;
      note.textContent = t("resume_note", { name: saved.name || t("a_file") });
    }

    async function upload(file) {
      const key = prefix + file.name + ":" + file.size + ":" + file.lastModified;
      let saved = JSON.parse(localStorage.getItem(key) || "null");
      let offset = null;
      if (saved) {
        const head = await request("HEAD", saved.url, tus);
        if (head && head.status === 200) {
          offset = parseInt(head.getResponseHeader("Upload-Offset"), 10);
          say(t("resuming_at", { percent: Math.floor((100 * offset) / file.size) }));
        } else {
          localStorage.removeItem(key);
          saved = null;
        }
      }
      if (offset === null) {
        const sha = await sha256OfFile(file, function (done) { show(done, file.size, "checking_file"); });
        const meta = { kind: "submission", challenge: form.dataset.challenge, phase: form.dataset.phase,
          filename: file.name, sha256: sha };
        const created = await request("POST", form.dataset.resumable, Object.assign({
          "Upload-Length": String(file.size),
          "Upload-Metadata": Object.keys(meta).map(function (k) { return k + " " + b64(meta[k]); }).join(","),
        }, tus));
        if (!created || created.status !== 201) {
          fail(t("not_accepted", { detail: detail(created) }));
          return null;
        }
        saved = { url: new URL(created.getResponseHeader("Location"), window.location.href).pathname,
          name: file.name };
        localStorage.setItem(key, JSON.stringify(saved));
        offset = 0;
      }
      const part = parseInt(form.dataset.partBytes || "8388608", 10);
      let failures = 0;
      while (offset < file.size) {
        const start = offset;
        const piece = file.slice(start, start + part);
        const headers = Object.assign({
          "Upload-Offset": String(start),
          "Content-Type": "application/offset+octet-stream",
        }, tus);
        const sum = await checksum(piece);
        if (sum) headers["Upload-Checksum"] = sum;
        const answer = await request("PATCH", saved.url, headers, piece,
          function (sent) { show(start + sent, file.size, "uploading_progress"); });
        if (answer && answer.status === 204) {
          offset = parseInt(answer.getResponseHeader("Upload-Offset"), 10);
          failures = 0;
          continue;
        }
        // 409: the server has another offset; 460: the part was damaged on its way.
        if (answer && answer.status >= 400 && answer.status < 500 && answer.status !== 409 &&
            answer.status !== 460) {
          fail(t("refused", { detail: detail(answer) }));
          return null;
        }
        failures += 1;
        if (failures > 3) {
          fail(t("paused", { percent: Math.floor((100 * offset) / file.size), detail: detail(answer) }));
          return null;
        }
        say(t("retrying"));
        await sleep(500 * Math.pow(2, failures - 1));
        const head = await request("HEAD", saved.url, tus);
        if (head && head.status === 200) offset = parseInt(head.getResponseHeader("Upload-Offset"), 10);
      }
      show(file.size, file.size, "checking_upload");
      return { key: key, id: saved.url.replace(/\/$/, "").split("/").pop() };
    }

    form.addEventListener("submit", async function (event) {
      const file = input && input.files && input.files[0];
      if (!file) return; // the plain form answers with its own error
      event.preventDefault();
      button.disabled = true;
      result.innerHTML = "";
      let done = null;
      try {
        done = await upload(file);
      } catch (err) {
        fail(t("stopped", { error: err }));
      }
      if (!done) return;
      const data = new FormData(form);
      data.delete(input.name);
      data.set("upload_id", done.id);
      const answer = await request("POST", form.action || window.location.href,
        { Accept: "application/json", "X-CSRFToken": csrf(form) }, data);
      button.disabled = false;
      let body = null;
      try { body = JSON.parse(answer.responseText); } catch (err) { body = null; }
      if (!body) {
        fail(t("server_answered_kept", { status: answer ? answer.status : t("nothing") }));
        return;
      }
      if (body.ok) {
        localStorage.removeItem(done.key);
        if (note) note.hidden = true;
        form.reset();
      }
      if (body.redirect) { window.location.assign(body.redirect); return; }
      say(t(body.ok ? "uploaded" : "not_accepted_below"));
      result.innerHTML = body.html || "";
      if (window.evalserverFollow) result.querySelectorAll("[data-live]").forEach(window.evalserverFollow);
      if (body.ok && window.evalserverRefreshQuota) window.evalserverRefreshQuota();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-resumable]").forEach(bind);
  });
})();
