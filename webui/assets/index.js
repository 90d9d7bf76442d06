"use strict";
async function drawJobs() {
  const {jobs} = await getJSON("/api/jobs");
  const tb = document.querySelector("#jobs tbody");
  tb.replaceChildren(...jobs.map(j => {
    const tr = el("tr", {"data-job": j.id, "data-state": j.state});
    const a = el("a", {href: "/job/" + encodeURIComponent(j.id)}, j.id);
    const td = el("td"); td.append(a); tr.append(td);
    tr.append(el("td", {class: "state " + j.state}, j.state));
    tr.append(el("td", {}, j.attempt + " of " + j.max_attempts));
    tr.append(el("td", {}, (j.spec.computer && j.spec.computer.name) || ""));
    tr.append(el("td", {}, j.spec.image.name));
    tr.append(el("td", {}, when(j.updated)));
    return tr;
  }));
  document.getElementById("job-count").textContent = jobs.length + " shown, the last changed first";
}
async function drawComputers() {
  const {computers} = await getJSON("/api/computers");
  const tb = document.querySelector("#computers tbody");
  tb.replaceChildren(...computers.map(c => {
    const tr = el("tr", {"data-computer": c.name, "data-state": c.state || ""});
    tr.append(el("td", {}, c.name));
    tr.append(el("td", {class: "state " + (c.state || "")}, (c.state || "") + (c.tainted ? " (tainted)" : "")));
    tr.append(el("td", {}, c.provisioner));
    tr.append(el("td", {}, c.image || ""));
    const td = el("td");
    if (c.job) td.append(el("a", {href: "/job/" + encodeURIComponent(c.job)}, c.job));
    tr.append(td);
    return tr;
  }));
  document.getElementById("computer-count").textContent = computers.length + " enrolled";
}
const redrawJobs = debounce(() => drawJobs().catch(console.error), 300);
const redrawComputers = debounce(() => drawComputers().catch(console.error), 300);
const events = document.getElementById("events");
follow("/api/events", (kind, ev) => {
  if (kind === "job") {
    logEvent(events, when(ev.time) + " " + ev.job_id + ": " + ev.message, ev.state || "");
    redrawJobs();
  } else {
    logEvent(events, when(ev.time) + " " + ev.computer + ": " + ev.message, ev.state || "");
    redrawComputers();
  }
});
drawJobs().catch(e => logEvent(events, "jobs: " + e.message, "error"));
drawComputers().catch(e => logEvent(events, "computers: " + e.message, "error"));
