"use strict";
const jobID = decodeURIComponent(location.pathname.replace(/^\/job\//, ""));
document.getElementById("job-id").textContent = jobID;
document.title = "loadpool — job " + jobID;
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
// drawTimeline draws one row per bar: the step as a bar on the job's time
// axis, the wait profile's budgets behind post-load bars.
function drawTimeline(tl) {
  const left = 140, right = 20, width = 960, row = 30, top = 24;
  const span = Math.max(tl.span, 1);
  const x = s => left + (width - left - right) * Math.min(s, span) / span;
  const height = top + row * tl.bars.length + 10;
  const root = svg("svg", {width: width, height: height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "timeline of job " + jobID});
  for (let i = 0; i <= 6; i++) {
    const s = span * i / 6;
    root.append(svg("line", {class: "tick", x1: x(s), x2: x(s), y1: top - 6, y2: height}));
    root.append(svg("text", {class: "axis", x: x(s), y: 14, "text-anchor": i === 0 ? "start" : i === 6 ? "end" : "middle"}, "+" + took(s)));
  }
  tl.bars.forEach((b, i) => {
    const y = top + i * row;
    const g = svg("g", {class: "row", "data-attempt": b.attempt, "data-step": b.step});
    g.append(svg("text", {x: 6, y: y + 18}, `attempt ${b.attempt} · ${b.step}`));
    for (const bu of (b.budgets || []).slice().reverse()) {
      const w = Math.max(x(bu.end) - x(b.start), 1);
      g.append(svg("rect", {class: "budget " + bu.name, x: x(b.start), y: y + 3, width: w, height: row - 6}));
      g.append(svg("title", {}, bu.text));
    }
    const cls = b.running ? "running" : b.outcome;
    const w = Math.max(x(b.end) - x(b.start), 2);
    const bar = svg("rect", {class: "bar " + cls, x: x(b.start), y: y + 7, width: w, height: row - 14, rx: 2,
      "data-attempt": b.attempt, "data-step": b.step, "data-outcome": b.outcome || "running"});
    bar.append(svg("title", {}, `${b.step} ${b.running ? "running" : b.outcome}: ${b.detail || ""}`));
    g.append(bar);
    const label = (b.running ? "running " : b.outcome + " ") + took(b.end - b.start) +
      ((b.budgets && b.budgets.length) ? " — " + b.budgets[0].text : "");
    const after = x(b.end) + 6 < width - 300;
    g.append(svg("text", {class: after ? "budget" : "inbar", x: after ? x(b.end) + 6 : x(b.start) + 6, y: y + 19}, label));
    root.append(g);
  });
  document.getElementById("timeline").replaceChildren(root);
}
function drawSteps(tl) {
  const tb = document.querySelector("#steps tbody");
  tb.replaceChildren(...tl.bars.map(b => {
    const tr = el("tr");
    tr.append(el("td", {}, b.attempt));
    tr.append(el("td", {}, b.step));
    tr.append(el("td", {class: "outcome " + (b.running ? "running" : b.outcome)}, b.running ? "running" : b.outcome));
    tr.append(el("td", {}, b.reason || ""));
    tr.append(el("td", {}, took(b.end - b.start)));
    tr.append(el("td", {}, b.worker || ""));
    tr.append(el("td", {class: "detail"}, b.detail || ""));
    const ev = el("td");
    for (const name of (b.evidence || [])) {
      const a = el("a", {href: "/evidence/" + name.split("/").map(encodeURIComponent).join("/"), class: "evidence"}, name.split("/").pop());
      ev.append(a, " ");
    }
    tr.append(ev);
    return tr;
  }));
}
let ended = false;
async function draw() {
  const {record: r, timeline: tl} = await getJSON("/api/job/" + encodeURIComponent(jobID));
  ended = ["ready", "failed", "canceled"].includes(r.state);
  const c = r.enrolled || r.spec.computer;
  const sum = document.getElementById("summary");
  sum.replaceChildren(el("span", {class: "state " + r.state}, r.state), ` · attempt ${r.attempt} of ${r.max_attempts} · computer ${c.name} (${c.provisioner || ""}) · image ${r.spec.image.name} (${r.spec.image.os_family}) · created ${when(r.created)}`);
  document.getElementById("error").textContent = r.error || "";
  drawTimeline(tl);
  drawSteps(tl);
}
const redraw = debounce(() => draw().catch(console.error), 200);
const events = document.getElementById("events");
const seen = new Set(); // events already listed (the history and the live stream overlap)
function addEvent(ev) {
  const key = ev.time + ev.message;
  if (seen.has(key)) return;
  seen.add(key);
  logEvent(events, when(ev.time) + " a" + ev.attempt + " " + (ev.step || "") + " [" + (ev.source || "") + "] " + ev.message, ev.state || "");
}
follow("/api/events?job=" + encodeURIComponent(jobID), (kind, ev) => { addEvent(ev); redraw(); });
getJSON("/api/history/" + encodeURIComponent(jobID))
  .then(({events: past}) => { for (const ev of past || []) addEvent(ev); })
  .catch(e => logEvent(events, "history: " + e.message, "error"));
setInterval(() => { if (!ended) redraw(); }, 1000);
draw().catch(e => { document.getElementById("error").textContent = e.message; });
