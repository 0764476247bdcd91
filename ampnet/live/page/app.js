// ampnet live control surface: one WebSocket to the session (see ampnet/live/server.py).
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const $ = (selector, root = document) => root.querySelector(selector);
let socket = null, nextId = 1, state = null, structure = "";
const pending = new Map();  // message id -> the message, to send again with overwrite

function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  message.id = nextId++;
  pending.set(message.id, message);
  socket.send(JSON.stringify(message));
}

function say(text, isError = false) {
  const el = $("#message");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function connect() {
  socket = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(token)}`);
  socket.onopen = () => { $("#connection").textContent = "connected"; $("#connection").classList.remove("lost"); };
  socket.onclose = () => {
    $("#connection").textContent = "disconnected: is 'ampnet live' still running?";
    $("#connection").classList.add("lost");
  };
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "meters") showMeters(m);
    else if (m.type === "state") showState(m);
    else answered(m);
  };
}

function answered(m) {
  const asked = pending.get(m.id);
  pending.delete(m.id);
  if (m.type === "error") say(m.message, true);
  else if (m.type === "exists") {
    if (asked && confirm(`${m.name} exists. Replace it?`)) send({ ...asked, overwrite: true });
    else say(`${m.name} exists: kept it; choose another name`, true);
  } else if (m.message) say(m.message);
}

// --- meters -------------------------------------------------------------------------
const FLOOR = -60;
function widthOf(db) { return `${Math.max(0, Math.min(100, (db - FLOOR) / -FLOOR * 100))}%`; }
function showMeter(el, peak, rms) {
  $(".rms", el).style.width = widthOf(rms);
  $(".peak", el).style.left = widthOf(peak);
  $(".peak-db", el).textContent = peak <= -120 ? "-inf" : peak.toFixed(1);
  $(".rms-db", el).textContent = rms <= -120 ? "-inf" : rms.toFixed(1);
  el.dataset.peak = peak; el.dataset.rms = rms;
  if (peak >= -0.01) $(".clip", el).setAttribute("aria-pressed", "true");  // held until clicked
}
function showMeters(m) {
  showMeter($('[data-testid="meter-in"]'), m.peak_in, m.rms_in);
  showMeter($('[data-testid="meter-out"]'), m.peak_out, m.rms_out);
  $('[data-testid="cpu"]').textContent = `${m.load.toFixed(1)}% (max ${m.load_max.toFixed(1)}%)`;
  $('[data-testid="xruns"]').textContent = m.xruns;
}
for (const button of document.querySelectorAll(".clip"))
  button.addEventListener("click", () => button.setAttribute("aria-pressed", "false"));

// --- state: facts, gains, chain, library, recording ---------------------------------
function showState(s) {
  state = s;
  $("#rig").textContent = s.rig;
  const lat = s.latency_ms;
  $('[data-testid="latency"]').textContent =
    `in ${lat.input.toFixed(1)} ms + out ${lat.output.toFixed(1)} ms` +
    (lat.resampling ? ` + resampling ${lat.resampling.toFixed(2)} ms` : "");
  $('[data-testid="rates"]').textContent = `device ${s.rates.device} Hz, model ${s.rates.model} Hz` +
    (s.rates.resampling ? " (resampling)" : " (no resampling)") + `, block ${s.blocksize || "device's"}`;
  $('[data-testid="device"]').textContent =
    `in: ${s.device.input} ch ${s.device.input_channel}; out: ${s.device.output} ch ${s.device.output_channels.join(",")}`;
  for (const which of ["input", "output"]) setIfIdle($(`#gain-${which}`), s.gains[which]);
  const shape = JSON.stringify([s.rig, s.processors.map(p => [p.label, p.params.map(q => q.name)])]);
  if (shape !== structure) { structure = shape; buildChain(s.processors); }
  for (const p of s.processors) {
    const li = $(`#chain > li[data-index="${p.index}"]`);
    li.classList.toggle("bypassed", p.bypassed);
    const button = $(".bypass", li);
    button.setAttribute("aria-pressed", String(p.bypassed));
    button.textContent = p.bypassed ? "bypassed" : "on";
    for (const q of p.params) {
      const row = $(`.param[data-name="${q.name}"]`, li);
      setIfIdle($("input[type=range]", row), q.value);
      setIfIdle($("input[type=number]", row), q.value);
    }
  }
  const library = $("#library");
  const names = Object.keys(s.library);
  if (library.dataset.names !== names.join("\n")) {
    library.dataset.names = names.join("\n");
    library.replaceChildren(...names.map(n => new Option(`${n} (${s.library[n]})`, n)));
    library.disabled = $('[data-testid="switch"]').disabled = names.length === 0;
    if (!names.length) library.append(new Option("no --library folder", ""));
  }
  const rec = s.recording;
  $("#record-button").textContent = rec ? "Stop" : "Record";
  $("#record-name").disabled = Boolean(rec);
  $("#recording").textContent = rec ? `recording ${rec.name}: ${(rec.frames / s.rates.device).toFixed(1)} s` : "";
}

function setIfIdle(input, value) {
  if (document.activeElement === input || input.dataset.dragging) return;
  input.value = value;
  const out = input.parentElement.querySelector(`output[for="${input.id}"]`);
  if (out) out.textContent = Number(value).toFixed(1);
}

function buildChain(processors) {
  const list = $("#chain");
  list.replaceChildren();
  for (const p of processors) {
    const li = document.createElement("li");
    li.dataset.index = p.index;
    li.dataset.testid = `processor-${p.index}`;
    li.setAttribute("data-testid", `processor-${p.index}`);
    const head = document.createElement("div");
    head.className = "processor-head";
    const title = document.createElement("h3");
    title.textContent = p.label;
    const bypass = document.createElement("button");
    bypass.type = "button";
    bypass.className = "bypass";
    bypass.setAttribute("aria-label", `bypass ${p.label}`);
    bypass.setAttribute("data-testid", `bypass-${p.index}`);
    bypass.addEventListener("click", () => {
      const now = bypass.getAttribute("aria-pressed") !== "true";
      bypass.setAttribute("aria-pressed", String(now));
      send({ type: "bypass", index: p.index, bypassed: now });
    });
    head.append(title, bypass);
    li.append(head);
    for (const q of p.params) li.append(paramRow(p, q));
    list.append(li);
  }
}

function paramRow(p, q) {
  const row = document.createElement("div");
  row.className = "param";
  row.dataset.name = q.name;
  const id = `p${p.index}-${q.name}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = q.name;
  const range = document.createElement("input");
  Object.assign(range, { type: "range", id, min: q.low, max: q.high, step: stepOf(q), value: q.value, disabled: !q.live });
  range.setAttribute("data-testid", `param-${p.index}-${q.name}`);
  const number = document.createElement("input");
  Object.assign(number, { type: "number", min: q.low, max: q.high, step: "any", value: q.value, disabled: !q.live });
  number.setAttribute("aria-label", `${q.name} of ${p.label} (${q.unit})`);
  number.setAttribute("data-testid", `value-${p.index}-${q.name}`);
  const unit = document.createElement("span");
  unit.className = "unit";
  unit.textContent = `${q.unit}, ${q.low} to ${q.high}` + (q.live ? "" : " (set in the preset)");
  const sendValue = throttle((value) => send({ type: "param", index: p.index, name: q.name, value }));
  range.addEventListener("input", () => { number.value = range.value; sendValue(Number(range.value)); });
  number.addEventListener("change", () => {
    const v = Number(number.value);
    if (Number.isFinite(v) && v >= q.low && v <= q.high) { range.value = v; sendValue(v); }
    else say(`${q.name}: give ${q.low} to ${q.high} ${q.unit}`, true);
  });
  row.append(label, range, number, unit);
  return row;
}

function stepOf(q) { const span = q.high - q.low; return span / 200 >= 1 ? 1 : span / 200; }

function throttle(fn, ms = 30) {  // the latest value at most every ms, and always the last one
  let timer = null, latest;
  return (value) => {
    latest = value;
    if (timer) return;
    fn(latest);
    timer = setTimeout(() => { timer = null; if (latest !== undefined) fn(latest); latest = undefined; }, ms);
    latest = undefined;
  };
}

for (const which of ["input", "output"]) {
  const input = $(`#gain-${which}`);
  const sendGain = throttle((db) => send({ type: "gain", which, db }));
  input.addEventListener("input", () => {
    input.parentElement.querySelector("output").textContent = Number(input.value).toFixed(1);
    sendGain(Number(input.value));
  });
}

$("#switch-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const item = $("#library").value;
  if (item) { say(`switching to ${item}…`); send({ type: "switch", item }); }
});
$("#save-form").addEventListener("submit", (event) => {
  event.preventDefault();
  send({ type: "save", name: $("#preset-name").value.trim() });
});
$("#record-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (state && state.recording) send({ type: "record", action: "stop" });
  else send({ type: "record", action: "start", name: $("#record-name").value.trim() });
});

connect();
