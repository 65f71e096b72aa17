// The dashboard: reads the JSON API of the daemon that served it, renders the four
// perspectives and the strategy map, opens a measure's chart, and re-renders when the
// events stream says a sync has finished. No framework, no build step; every request
// goes to this page's own origin.

import { el, getJson, statusText, withUnit } from "./dom.js";
import { sparkline, fullChart, bands } from "./chart.js";
import { strategyMap } from "./map.js";

const SPARK_PERIODS = 12;
const root = document.documentElement;
const view = { scorecard: null, map: null, alerts: null, sparks: new Map(), mapWidth: 0 };

/** The date `count` periods of `kind` before the local date `date` (YYYY-MM-DD). */
function periodsBack(date, kind, count) {
  const [year, month, day] = date.split("-").map(Number);
  const moved = new Date(Date.UTC(year, month - 1, day));
  if (kind === "day") moved.setUTCDate(moved.getUTCDate() - count);
  else if (kind === "week") moved.setUTCDate(moved.getUTCDate() - 7 * count);
  else if (kind === "month") moved.setUTCMonth(moved.getUTCMonth() - count);
  else if (kind === "quarter") moved.setUTCMonth(moved.getUTCMonth() - 3 * count);
  else if (kind === "year") moved.setUTCFullYear(moved.getUTCFullYear() - count);
  return moved.toISOString().slice(0, 10);
}

function measures() {
  return view.scorecard ? view.scorecard.perspectives.flatMap((p) => p.measures) : [];
}

function targetText(target, unit) {
  if (!target) return "no target";
  return `target ${target.direction === "down" ? "≤" : "≥"} ${withUnit(target.value, unit)}`;
}

/** The last two known values of a series as a trend: arrow, change and whether it helps. */
function trend(points, target) {
  const known = points.filter((p) => Number.isFinite(p.value));
  if (known.length < 2) return null;
  const [previous, last] = known.slice(-2);
  const delta = last.value - previous.value;
  const arrow = delta > 0 ? "▲" : delta < 0 ? "▼" : "▶";
  const change = previous.value !== 0
    ? `${Math.abs((delta / Math.abs(previous.value)) * 100).toFixed(1)}%`
    : "";
  let verdict = "neutral";
  if (target && delta !== 0) {
    const better = target.direction === "down" ? delta < 0 : delta > 0;
    verdict = better ? "better" : "worse";
  }
  const words = delta > 0 ? "up" : delta < 0 ? "down" : "unchanged";
  return { arrow, change, verdict, words, since: previous.period };
}

function measureCard(measure) {
  const judged = measure.judged;
  const status = judged.status;
  const points = view.sparks.get(measure.id) ?? [];
  const direction = trend(points, measure.target);
  const light = el("span", { class: `light light-${status}` },
    el("span", { class: "dot", "aria-hidden": "true" }),
    status === "none" && !measure.target ? "No target" : statusText(status));
  const trendNode = direction
    ? el("span", { class: `trend trend-${direction.verdict}` },
      `${direction.arrow} ${direction.change}`,
      el("span", { class: "visually-hidden", text: ` ${direction.words} since ${direction.since}${direction.verdict === "neutral" ? "" : `, ${direction.verdict}`}` }))
    : el("span", { class: "trend trend-neutral", text: "no trend" });
  const button = el("button", {
    type: "button",
    class: `measure status-${status}`,
    "data-measure": measure.id,
    "data-status": status,
    "aria-haspopup": "dialog",
  },
  el("span", { class: "m-head" }, el("span", { class: "m-name", text: measure.name }), light),
  el("span", { class: "m-value", "data-value": judged.value ?? "", text: withUnit(judged.value, measure.unit) }),
  points.length ? sparkline(points, measure.target, measure.unit) : el("span"),
  el("span", { class: "m-target" },
    measure.target ? el("span", { class: "t-word", text: "target " }) : null,
    measure.target ? targetText(measure.target, measure.unit).replace(/^target /, "") : "no target",
    el("span", { class: "t-period", text: ` · ${judged.period}` })),
  trendNode);
  button.addEventListener("click", () => {
    location.hash = `measure=${encodeURIComponent(measure.id)}`;
  });
  return el("li", {}, button);
}

function renderBoard() {
  const container = document.getElementById("perspectives");
  const sections = view.scorecard.perspectives.map((perspective) => {
    const counts = ["red", "amber", "green", "none"]
      .map((status) => [status, perspective.measures.filter((m) => m.judged.status === status).length])
      .filter(([, n]) => n > 0)
      .map(([status, n]) => `${n} ${status === "none" ? "without status" : status}`);
    return el("section", { class: "perspective", "data-perspective": perspective.id, "aria-labelledby": `p-${perspective.id}` },
      el("h3", { id: `p-${perspective.id}`, text: perspective.title }),
      el("p", { class: "counts", text: counts.join(" · ") || "no measures" }),
      el("ul", { class: "measures" }, ...perspective.measures.map(measureCard)));
  });
  container.replaceChildren(...sections);
}

/** Draws the map for the container's width (or `forWidth`, when printing). */
function renderMap(forWidth) {
  const container = document.getElementById("map");
  const width = forWidth ?? Math.max(300, Math.round(container.clientWidth || 960));
  const statuses = new Map(measures().map((m) => [m.id, m.judged.status]));
  view.mapWidth = width;
  container.replaceChildren(strategyMap(view.map, (id) => statuses.get(id), width));
}

function renderHeader() {
  const scorecard = view.scorecard;
  document.title = `${scorecard.name} — scorecard`;
  document.getElementById("title").textContent = scorecard.name;
  const built = new Date(scorecard.generated_at);
  const time = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: scorecard.timezone }).format(built);
  document.getElementById("generated").textContent = `Updated ${time} · periods in ${scorecard.timezone}`;
}

async function loadSparks(list) {
  const entries = await Promise.all(list.map(async (measure) => {
    const to = measure.judged.start.slice(0, 10);
    const from = periodsBack(to, measure.period, SPARK_PERIODS - 1);
    try {
      return [measure.id, await getJson(`/api/v1/measures/${encodeURIComponent(measure.id)}/series?from=${from}&to=${to}`)];
    } catch {
      return [measure.id, []];
    }
  }));
  return new Map(entries);
}

let refreshing = null;
let again = false;

/** Fetches everything and re-renders; a call during a refresh runs once more after it. */
function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      do {
        again = false;
        const [scorecard, map, alerts] = await Promise.all([
          getJson("/api/v1/scorecard"),
          getJson("/api/v1/strategy-map"),
          getJson("/api/v1/alerts"),
        ]);
        const sparks = await loadSparks(scorecard.perspectives.flatMap((p) => p.measures));
        Object.assign(view, { scorecard, map, alerts, sparks });
        renderHeader();
        renderBoard();
        renderMap();
        await showDetailFromHash();
        root.dataset.renders = String(Number(root.dataset.renders ?? 0) + 1);
        root.dataset.ready = "1";
      } while (again);
    } catch (error) {
      setLive(`update failed (${error.message}); retrying at the next sync`, "error");
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

// ---- The measure's chart -------------------------------------------------------------

const dialog = document.getElementById("detail");

function bandText(target, unit) {
  if (!target) return "No target: no status bands.";
  return bands(target, -Infinity, Infinity)
    .map(([status, from, to]) => {
      if (from === -Infinity) return `${status} below ${withUnit(to, unit)}`;
      if (to === Infinity) return `${status} from ${withUnit(from, unit)} up`;
      return `${status} ${withUnit(from, unit)} to ${withUnit(to, unit)}`;
    })
    .join(" · ");
}

function alertSection(measure) {
  const timezone = view.scorecard.timezone;
  const when = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: timezone });
  const day = new Intl.DateTimeFormat("en-CA", { timeZone: timezone });
  const mine = view.alerts.alerts.filter((alert) => alert.subject === measure.id);
  const keys = new Set(mine.map((alert) => alert.alert));
  const history = view.alerts.history.filter((row) => keys.has(row.alert));
  const states = mine.map((alert) => el("li", { class: "alert-state", "data-alert": alert.alert },
    `${alert.kind} alert: ${alert.state}`,
    alert.status ? ` (${alert.status})` : "",
    alert.since ? ` since ${when.format(new Date(alert.since))}` : "",
    alert.silenced_until ? ` · silenced until ${when.format(new Date(alert.silenced_until))}` : ""));
  const parts = [];
  if (states.length) parts.push(el("ul", { class: "alert-states" }, ...states));
  if (history.length === 0) {
    parts.push(el("p", { class: "empty", text: "No alert events recorded for this measure." }));
  } else {
    const rows = history.map((row) => el("tr", { class: "alert-event", "data-event": row.event },
      el("td", { text: when.format(new Date(row.at * 1000)) }),
      el("td", { text: row.event + (row.silenced ? " (silenced)" : "") }),
      el("td", { text: row.status ?? "—" }),
      el("td", { class: "num", text: withUnit(row.value, measure.unit) }),
      el("td", { text: row.period_start ? day.format(new Date(row.period_start * 1000)) : "—" })));
    parts.push(el("table", { class: "alerts" },
      el("thead", {}, el("tr", {}, ...["When", "Event", "Status", "Value", "Period from"].map((h) => el("th", { scope: "col", class: h === "Value" ? "num" : null, text: h })))),
      el("tbody", {}, ...rows)));
  }
  return parts;
}

async function openDetail(id) {
  const measure = measures().find((m) => m.id === id);
  if (!measure) return closeDetail();
  const series = await getJson(`/api/v1/measures/${encodeURIComponent(id)}/series`);
  document.getElementById("detail-title").textContent = measure.name;
  const judged = measure.judged;
  const facts = [
    `${judged.period}: ${withUnit(judged.value, measure.unit)}, ${targetText(measure.target, measure.unit)} — ${statusText(judged.status)}`,
    measure.evaluate === "complete" && measure.current.period !== judged.period
      ? `${measure.current.period} so far: ${withUnit(measure.current.value, measure.unit)}`
      : `${judged.period} is still running`,
    measure.objective ? `objective ${view.map.objectives.find((o) => o.id === measure.objective)?.name ?? measure.objective}` : null,
    measure.owner ? `owner ${measure.owner}` : null,
  ].filter(Boolean);
  document.getElementById("detail-summary").textContent = facts.join(" · ");
  document.getElementById("detail-chart").replaceChildren(fullChart(series, measure.target, measure.unit, measure.name));
  document.getElementById("detail-legend").textContent = `Bands: ${bandText(measure.target, measure.unit)}. Dashed line: the target.`;
  document.getElementById("detail-alerts").replaceChildren(...alertSection(measure));
  dialog.dataset.measure = id;
  if (!dialog.open) dialog.showModal();
}

function closeDetail() {
  if (dialog.open) dialog.close();
}

async function showDetailFromHash() {
  const match = /^#measure=(.+)$/.exec(location.hash);
  if (match) await openDetail(decodeURIComponent(match[1]));
  else closeDetail();
}

document.getElementById("detail-close").addEventListener("click", closeDetail);
dialog.addEventListener("close", () => {
  delete dialog.dataset.measure;
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
});
window.addEventListener("hashchange", () => {
  if (view.scorecard) showDetailFromHash();
});

// ---- Live updates ----------------------------------------------------------------------

function setLive(text, state) {
  const live = document.getElementById("live");
  live.textContent = text;
  live.dataset.state = state;
}

let seenGeneration = null;

function listen() {
  const events = new EventSource("/api/v1/events");
  events.addEventListener("open", () => setLive("live", "live"));
  events.addEventListener("error", () => setLive("reconnecting…", "waiting"));
  // The first event names the current sync generation; each later one a finished sync.
  // A new number (also after a reconnect that missed some) means new data.
  events.addEventListener("sync", async (event) => {
    setLive("live", "live");
    if (event.data === seenGeneration) return;
    seenGeneration = event.data;
    await refresh();
    root.dataset.generation = event.data;
  });
}

let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    const width = document.getElementById("map").clientWidth;
    if (view.map && Math.abs(width - view.mapWidth) > 8) renderMap();
  }, 150);
});

// Print with the desktop layout of the map, whatever the window's width.
window.addEventListener("beforeprint", () => {
  if (view.map) renderMap(1000);
});
window.addEventListener("afterprint", () => {
  if (view.map) renderMap();
});

listen();
// Without the events stream (a proxy that buffers it), render once anyway.
setTimeout(() => {
  if (!root.dataset.ready && !refreshing) refresh();
}, 3000);
