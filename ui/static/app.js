// Gatehouse UI: modal dialogs and live updates. Everything works without this
// file; it only makes dialogs modal and keeps the dashboard current.
(() => {
  "use strict";

  // Dialogs. Triggers are links to ?dialog=ID so they also work without
  // JavaScript (the server then renders the dialog open).
  const openDialog = (id) => {
    const d = document.getElementById(id);
    if (!(d instanceof HTMLDialogElement)) return false;
    if (d.open) d.close();
    d.showModal();
    const first = d.querySelector("input:not([type=hidden]), select, button");
    if (first) first.focus();
    return true;
  };
  document.addEventListener("click", (ev) => {
    const opener = ev.target.closest("[data-dialog]");
    if (opener && openDialog(opener.dataset.dialog)) {
      ev.preventDefault();
      return;
    }
    const closer = ev.target.closest("[data-dialog-close]");
    if (closer) {
      const d = closer.closest("dialog");
      if (d) {
        ev.preventDefault();
        d.close();
      }
      return;
    }
    const copy = ev.target.closest("[data-copy]");
    if (copy) {
      const field = document.getElementById(copy.dataset.copy);
      if (!field) return;
      field.select();
      const done = () => { copy.textContent = "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, () => {});
      else if (document.execCommand("copy")) done();
    }
  });
  // A dialog the server rendered open (after a validation error) becomes modal.
  document.addEventListener("DOMContentLoaded", () => {
    for (const d of document.querySelectorAll("dialog[open]")) openDialog(d.id);
  });

  // Live updates: elements with data-live="TOPIC" subscribe to that topic.
  // An event's data.id picks the tile (data-server-id); every key of the
  // event's data updates the tile's element with the matching data-field.
  const handlers = {};
  const gatehouse = {
    on(name, fn) { (handlers[name] = handlers[name] || []).push(fn); },
  };
  window.gatehouse = gatehouse;

  const applyServer = (data) => {
    const tile = document.querySelector(`[data-server-id="${CSS.escape(String(data.id))}"]`);
    if (!tile) return;
    for (const [key, value] of Object.entries(data)) {
      if (key === "status") tile.dataset.status = value;
      const el = tile.querySelector(`[data-field="${CSS.escape(key)}"]`);
      if (!el) continue;
      if (el instanceof HTMLTimeElement) {
        el.dateTime = value;
        el.textContent = "just now";
      } else {
        el.textContent = value;
        if (key === "status") el.className = `status status-${value}`;
      }
    }
  };
  gatehouse.on("server.status", applyServer);
  gatehouse.on("server.update", applyServer);

  document.addEventListener("DOMContentLoaded", () => {
    const topics = [...document.querySelectorAll("[data-live]")].map((el) => el.dataset.live);
    if (!topics.length || !window.EventSource) return;
    const q = [...new Set(topics)].map((t) => "topic=" + encodeURIComponent(t)).join("&");
    const es = new EventSource("/events?" + q);
    const dispatch = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      for (const fn of handlers[msg.name] || []) fn(msg.data, msg);
    };
    for (const name of Object.keys(handlers)) es.addEventListener(name, dispatch);
    es.onmessage = dispatch;
  });
})();
