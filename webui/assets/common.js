"use strict";
// Shared by both pages: JSON fetches, the event stream, formatting.
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
async function getJSON(url) {
  const r = await fetch(url, {cache: "no-store"});
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function when(t) { return t ? new Date(t).toLocaleTimeString() : ""; }
function took(s) {
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}
// follow opens the event stream and calls onEvent(kind, event) for each.
function follow(url, onEvent) {
  const live = document.getElementById("live");
  const es = new EventSource(url);
  es.onopen = () => { live.textContent = "live"; live.className = "live"; };
  es.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
  for (const kind of ["job", "computer"]) {
    es.addEventListener(kind, m => { try { onEvent(kind, JSON.parse(m.data)); } catch (e) { console.error(e); } });
  }
  return es;
}
function logEvent(list, text, cls) {
  const li = el("li", {class: cls || ""}, text);
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}
// debounce runs f at most every ms milliseconds, and once more after
// the last call (so the last event of a burst is always drawn).
function debounce(f, ms) {
  let t = null, again = false;
  const fire = () => { t = null; f(); if (again) { again = false; t = setTimeout(fire, ms); } };
  return () => { if (t === null) t = setTimeout(fire, ms); else again = true; };
}
