// Automation forms, progressively enhanced (every form also works without JavaScript: all fields show and
// the server keeps the ones that apply).
// - A select with data-switch shows only the fields of its scope ([data-switch-scope]) whose data-when
//   lists the selected value: a playbook step's parameters per action, a guardrail's per kind.
// - The playbook step editor ([data-step-editor]) adds, removes and reorders step rows.
(function () {
  "use strict";

  function applySwitch(select) {
    var scope = select.closest("[data-switch-scope]");
    scope.querySelectorAll("[data-when]").forEach(function (field) {
      field.hidden = field.getAttribute("data-when").split(" ").indexOf(select.value) === -1;
    });
  }

  function renumber(list) {
    var rows = list.querySelectorAll("[data-step]");
    rows.forEach(function (row, i) {
      row.querySelector("[data-step-no]").textContent = String(i + 1);
      row.querySelector("[data-step-up]").disabled = i === 0;
      row.querySelector("[data-step-down]").disabled = i === rows.length - 1;
      row.querySelector("[data-step-remove]").disabled = rows.length === 1;
    });
  }

  function setupSteps(editor) {
    if (editor.hasAttribute("data-ready")) return;
    editor.setAttribute("data-ready", "");
    var list = editor.querySelector("[data-steps]");
    var blank = editor.querySelector("template[data-step-template]");
    editor.classList.add("auto-steps-live");
    // the blank row that adds a step without JavaScript: "Add step" does that here
    var spare = list.querySelector("[data-step-blank]");
    if (spare && list.querySelectorAll("[data-step]").length > 1 && !spare.querySelector("[data-switch]").value) spare.remove();
    renumber(list);
    editor.addEventListener("click", function (evt) {
      var btn = evt.target.closest("button");
      if (!btn || !editor.contains(btn)) return;
      var row = btn.closest("[data-step]");
      if (btn.hasAttribute("data-step-add")) {
        var fresh = blank.content.firstElementChild.cloneNode(true);
        list.appendChild(fresh);
        applySwitch(fresh.querySelector("[data-switch]"));
        fresh.querySelector("select").focus();
      } else if (btn.hasAttribute("data-step-remove") && row) {
        row.remove();
      } else if (btn.hasAttribute("data-step-up") && row && row.previousElementSibling) {
        list.insertBefore(row, row.previousElementSibling);
        btn.focus();
      } else if (btn.hasAttribute("data-step-down") && row && row.nextElementSibling) {
        list.insertBefore(row.nextElementSibling, row);
        btn.focus();
      } else {
        return;
      }
      evt.preventDefault();
      renumber(list);
    });
  }

  function init(root) {
    root.querySelectorAll("[data-switch]").forEach(applySwitch);
    root.querySelectorAll("[data-step-editor]").forEach(setupSteps);
  }

  document.addEventListener("change", function (evt) {
    if (evt.target.matches("[data-switch]")) applySwitch(evt.target);
  });
  // content HTMX swaps in (the incident panel) gets the same treatment
  document.addEventListener("htmx:load", function (evt) { init(evt.detail.elt); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(document); });
  else init(document);
})();
