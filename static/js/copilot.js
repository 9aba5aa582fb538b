// Copilot panel: stream the answer from /api/copilot/chat (Server-Sent Events over fetch, so no HTMX
// extension or CDN is needed), then let HTMX re-render the panel with the stored answer and its links.
// Without this script the form posts normally and the answer comes back with the panel.
(function () {
  "use strict";
  if (window.zentroCopilot) return;  // loaded once, even if the panel is rendered again
  window.zentroCopilot = true;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function bubble(log, role, text) {
    var empty = log.querySelector(".copilot-empty");
    if (empty) empty.remove();
    var li = document.createElement("li");
    li.className = "copilot-msg copilot-" + role;
    var who = document.createElement("div");
    who.className = "copilot-who";
    who.textContent = role === "user" ? "You" : "Copilot";
    var body = document.createElement("div");
    body.className = "copilot-text";
    body.textContent = text;
    li.appendChild(who);
    li.appendChild(body);
    log.appendChild(li);
    return body;
  }

  // Parse "event: x\ndata: {...}\n\n" blocks as they arrive; call onEvent(name, data) for each.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (step) {
        buffer += decoder.decode(step.value || new Uint8Array(), { stream: !step.done });
        var blocks = buffer.split("\n\n");
        buffer = step.done ? "" : blocks.pop();
        blocks.forEach(function (block) {
          var name = "message", data = [];
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event:") === 0) name = line.slice(6).trim();
            else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
          });
          if (data.length) onEvent(name, JSON.parse(data.join("\n")));
        });
        return step.done ? null : pump();
      });
    }
    return pump();
  }

  function refresh(panel) {
    if (window.htmx) {
      window.htmx.ajax("GET", panel.getAttribute("data-panel-url"), { target: "#" + panel.id, swap: "outerHTML" });
    } else {
      window.location.hash = panel.id;
      window.location.reload();
    }
  }

  function ask(form) {
    var panel = form.closest(".copilot-panel");
    var log = panel.querySelector(".copilot-log");
    var field = form.querySelector("textarea[name=message]");
    var question = field.value.trim();
    if (!question) { field.focus(); return; }
    var payload = { message: question, incident_id: Number(form.getAttribute("data-incident-id")) };
    var thread = form.querySelector("input[name=thread_id]");
    if (thread) payload.thread_id = Number(thread.value);
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    panel.setAttribute("aria-busy", "true");
    bubble(log, "user", question);
    var answer = bubble(log, "assistant", "");
    answer.classList.add("copilot-streaming");
    field.value = "";
    toBottom(panel);
    fetch(form.getAttribute("data-copilot-stream"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream", "X-CSRFToken": csrf() },
      body: JSON.stringify(payload)
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (err) { throw new Error(err.detail || ("HTTP " + response.status)); },
                                     function () { throw new Error("HTTP " + response.status); });
      }
      return readEvents(response, function (name, data) {
        if (name === "delta") { answer.textContent += data.text; toBottom(panel); }
      });
    }).then(function () {
      refresh(panel);
    }).catch(function (error) {
      answer.classList.remove("copilot-streaming");
      answer.classList.add("copilot-failed");
      answer.textContent = "The copilot could not answer: " + error.message;
      field.value = question;
      button.disabled = false;
      panel.removeAttribute("aria-busy");
    });
  }

  // Show the newest message: after the panel loads or is re-rendered, and while an answer streams in.
  function toBottom(root) {
    var log = root && root.querySelector ? root.querySelector(".copilot-log") : null;
    if (log) log.scrollTop = log.scrollHeight;
  }
  document.addEventListener("htmx:afterSettle", function (evt) {
    var panel = document.getElementById("copilot");
    if (panel && (evt.target === panel || panel.contains(evt.target))) toBottom(panel);
  });

  document.addEventListener("submit", function (evt) {
    var form = evt.target.closest("form[data-copilot-stream]");
    if (!form || !window.fetch || !window.TextDecoder) return;
    evt.preventDefault();
    evt.stopPropagation();  // HTMX would post the form too
    ask(form);
  }, true);

  document.addEventListener("click", function (evt) {
    var chip = evt.target.closest("[data-copilot-ask]");
    if (!chip) return;
    var form = chip.closest("form[data-copilot-stream]");
    form.querySelector("textarea[name=message]").value = chip.getAttribute("data-copilot-ask");
    form.requestSubmit();
  });
})();
