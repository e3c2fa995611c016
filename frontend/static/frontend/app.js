// evalserver's only script: upload progress, live submission status, confirmations.
// Pages work without it (plain form posts, a reload shows the status).
"use strict";

(function () {
  const FINAL = ["finished", "partially_evaluated", "failed", "cancelled"];

  // The page's words, in the reader's language: base.html renders them as JSON
  // (frontend/labels.py SCRIPT_TEXTS). text("key", {name: value}) fills %(name)s.
  let texts = null;
  function text(key, values) {
    if (texts === null) {
      const node = document.getElementById("evalserver-texts");
      try { texts = node ? JSON.parse(node.textContent) : {}; } catch (err) { texts = {}; }
    }
    const template = texts[key] === undefined ? key : texts[key];
    if (typeof template !== "string") return template;
    return template.replace(/%\((\w+)\)s/g, function (all, name) {
      return values && values[name] !== undefined ? String(values[name]) : all;
    }).replace(/%%/g, "%");
  }
  window.evalserverText = text;

  // The browser's time zone, for the server to show dates in (frontend.middleware) from
  // the next page on; a zone chosen on the preferences page is not overwritten.
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    // IANA names are letters, digits, "/", "_", "+" and "-": safe in a cookie as they are.
    if (zone && /^[A-Za-z0-9_+\/-]+$/.test(zone) &&
        document.cookie.split("; ").every(function (c) { return c.indexOf("evalserver_tz=") !== 0; })) {
      document.cookie = "evalserver_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (err) { /* no Intl: the site's zone stays */ }

  function csrfToken(form) {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Forms marked data-upload are sent with XMLHttpRequest so the progress bar can move.
  // The page view answers JSON: {ok, redirect} or {ok, html} (errors or the new submission).
  function bindUpload(form) {
    const bar = form.querySelector("progress");
    const text = form.querySelector("[data-progress-text]");
    const result = document.querySelector(form.dataset.result || "#upload-result");
    const button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", csrfToken(form));
      xhr.upload.addEventListener("loadstart", function () {
        bar.hidden = false;
        bar.value = 0;
        if (text) text.textContent = window.evalserverText("uploading");
      });
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          bar.value = Math.round((100 * e.loaded) / e.total);
          if (text) text.textContent = window.evalserverText("uploading_percent", { percent: bar.value });
        }
      });
      xhr.upload.addEventListener("load", function () {
        bar.value = 100;
        if (text) text.textContent = window.evalserverText("uploaded_checking");
      });
      xhr.addEventListener("load", function () {
        button.disabled = false;
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch (err) {
          data = null;
        }
        if (!data) {
          if (text) text.textContent = "";
          result.innerHTML = "";
          const p = document.createElement("p");
          p.className = "flash error";
          p.textContent = window.evalserverText("server_answered", { status: xhr.status });
          result.appendChild(p);
          return;
        }
        if (data.redirect) {
          window.location.assign(data.redirect);
          return;
        }
        if (text) text.textContent = window.evalserverText(data.ok ? "uploaded" : "not_accepted_below");
        result.innerHTML = data.html || "";
        if (data.ok) form.reset();
        result.querySelectorAll("[data-live]").forEach(follow);
        if (data.ok) refreshQuota();
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        if (text) text.textContent = window.evalserverText("network_error");
      });
      button.disabled = true;
      xhr.send(new FormData(form));
    });
  }

  function renderResults(target, results) {
    if (!target || !results || !results.length) return;
    const table = document.createElement("table");
    table.className = "results";
    results.forEach(function (r) {
      const row = table.insertRow();
      row.insertCell().textContent = r.split;
      row.insertCell().textContent = Object.keys(r.scores)
        .map(function (k) {
          const v = r.scores[k];
          return k + " " + (typeof v === "number" ? String(Math.round(v * 1e4) / 1e4) : v);
        })
        .join(" · ");
    });
    target.innerHTML = "";
    target.appendChild(table);
  }

  // The submit page's quota box after a submission, and after one ends (a failed or
  // cancelled one gives its place back): the page itself is fetched again and its box
  // and button swapped in, so the numbers come from the one place that computes them.
  function refreshQuota() {
    const box = document.getElementById("quota");
    if (!box || !box.classList.contains("quota")) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        const page = new DOMParser().parseFromString(html, "text/html");
        const fresh = page.getElementById("quota");
        const current = document.getElementById("quota");
        if (fresh && current) current.replaceWith(document.importNode(fresh, true));
        const freshButton = page.querySelector("form[data-upload] button[type=submit]");
        const button = document.querySelector("form[data-upload] button[type=submit]");
        if (freshButton && button) button.disabled = freshButton.disabled;
      })
      .catch(function () {});
  }
  window.evalserverRefreshQuota = refreshQuota;

  // Elements with data-submission and data-live poll the JSON API about every second
  // until the submission reaches a final state.
  function follow(el) {
    const id = el.dataset.submission;
    const status = el.querySelector("[data-status]");
    function poll() {
      fetch("/api/v1/submissions/" + id + "/", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { setTimeout(poll, 3000); return; }
          status.textContent = text("statuses")[data.status] || data.status;
          status.className = "status status-" + data.status;
          el.dataset.state = data.status;
          if (FINAL.indexOf(data.status) === -1) { setTimeout(poll, 1000); return; }
          delete el.dataset.live;
          if (el.hasAttribute("data-reload")) { window.location.reload(); return; }
          refreshQuota();
          renderResults(el.querySelector("[data-results]"), data.results);
          if (data.failure_message) {
            const small = document.createElement("small");
            small.textContent = data.failure_message;
            status.after(document.createElement("br"), small);
          }
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    // Forms that upload resumably are resumable.js's.
    document.querySelectorAll("form[data-upload]:not([data-resumable])").forEach(bindUpload);
    window.evalserverFollow = follow;
    document.querySelectorAll("[data-submission][data-live]").forEach(follow);
    // The language switcher changes the language as soon as one is picked.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll("[data-confirm]").forEach(function (el) {
      el.addEventListener("click", function (e) {
        if (!window.confirm(el.dataset.confirm)) e.preventDefault();
      });
    });
  });
})();
