// The sparkline beside each measure and the full chart of one measure, as inline SVG.

import { svg, withUnit, statusText, formatNumber } from "./dom.js";

/** [low, high] covering the values and the target lines, padded a little. */
function range(values, target) {
  const all = values.filter(Number.isFinite);
  if (target) {
    all.push(target.value);
    if (Number.isFinite(target.warn)) all.push(target.warn);
  }
  if (all.length === 0) return [0, 1];
  let low = Math.min(...all);
  let high = Math.max(...all);
  if (low === high) {
    low -= Math.abs(low) * 0.1 || 1;
    high += Math.abs(high) * 0.1 || 1;
  }
  const pad = (high - low) * 0.08;
  return [low - pad, high + pad];
}

/** The path of a series with gaps where a value is missing. */
function linePath(points, x, y) {
  let path = "";
  let drawing = false;
  points.forEach((point, index) => {
    if (!Number.isFinite(point.value)) {
      drawing = false;
      return;
    }
    path += `${drawing ? "L" : "M"}${x(index).toFixed(1)},${y(point.value).toFixed(1)}`;
    drawing = true;
  });
  return path;
}

/** An inline sparkline of `points` (oldest first) with the target as a dashed line. */
export function sparkline(points, target, unit) {
  const width = 120;
  const height = 30;
  const [low, high] = range(points.map((p) => p.value), target);
  const x = (i) => 2 + (i * (width - 4)) / Math.max(points.length - 1, 1);
  const y = (v) => height - 3 - ((v - low) * (height - 6)) / (high - low);
  const known = points.filter((p) => Number.isFinite(p.value));
  const label = known.length
    ? `Last ${points.length} periods, ${points[0].period} to ${points[points.length - 1].period}: from ${withUnit(known[0].value, unit)} to ${withUnit(known[known.length - 1].value, unit)}`
    : `Last ${points.length} periods: no values`;
  const chart = svg("svg", {
    class: "sparkline",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
    preserveAspectRatio: "none",
  });
  if (target) {
    const ty = y(target.value).toFixed(1);
    chart.append(svg("line", { class: "spark-target", x1: 0, x2: width, y1: ty, y2: ty }));
  }
  chart.append(svg("path", { class: "spark-line", d: linePath(points, x, y) }));
  const lastIndex = points.length - 1;
  if (lastIndex >= 0 && Number.isFinite(points[lastIndex].value)) {
    chart.append(svg("circle", {
      class: `spark-dot fill-${points[lastIndex].status}`,
      cx: x(lastIndex).toFixed(1),
      cy: y(points[lastIndex].value).toFixed(1),
      r: 2.6,
    }));
  }
  return chart;
}

/** About `count` round tick values between low and high. */
function ticks(low, high, count) {
  const rough = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? rough;
  const out = [];
  for (let value = Math.ceil(low / step) * step; value <= high; value += step) {
    out.push(Math.abs(value) < step / 1e6 ? 0 : value);
  }
  return out;
}

/**
 * The zones of the status bands, as `[status, from, to]` in value space: for "up", green
 * at or above the target, amber from `warn` up to it, red below; "down" mirrors this
 * (the rule of src/status.rs).
 */
export function bands(target, low, high) {
  if (!target) return [];
  const edge = Number.isFinite(target.warn) ? target.warn : target.value;
  if (target.direction === "down") {
    return [
      ["green", low, target.value],
      ["amber", target.value, edge],
      ["red", edge, high],
    ].filter(([, from, to]) => to > from);
  }
  return [
    ["red", low, edge],
    ["amber", edge, target.value],
    ["green", target.value, high],
  ].filter(([, from, to]) => to > from);
}

/** The full chart of one measure's series: bands, target line, the line and its points. */
export function fullChart(points, target, unit, name) {
  const width = 760;
  const height = 300;
  const margin = { top: 14, right: 16, bottom: 34, left: 64 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const [low, high] = range(points.map((p) => p.value), target);
  const x = (i) => margin.left + (i * plotWidth) / Math.max(points.length - 1, 1);
  const y = (v) => margin.top + plotHeight - ((v - low) * plotHeight) / (high - low);
  const clampY = (v) => y(Math.min(Math.max(v, low), high));

  const targetText = target
    ? `, target ${target.direction === "down" ? "at most" : "at least"} ${withUnit(target.value, unit)}`
    : ", no target";
  const chart = svg("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${name}: ${points.length} periods${points.length ? ` from ${points[0].period} to ${points[points.length - 1].period}` : ""}${targetText}`,
  });

  for (const [status, from, to] of bands(target, low, high)) {
    chart.append(svg("rect", {
      class: `band band-${status}`,
      "data-band": status,
      x: margin.left,
      width: plotWidth,
      y: clampY(to).toFixed(1),
      height: Math.max(clampY(from) - clampY(to), 0).toFixed(1),
    }));
  }
  for (const value of ticks(low, high, 5)) {
    const ty = y(value).toFixed(1);
    chart.append(
      svg("line", { class: "grid", x1: margin.left, x2: width - margin.right, y1: ty, y2: ty }),
      svg("text", { class: "axis", x: margin.left - 6, y: ty, dy: "0.32em", "text-anchor": "end", text: formatNumber(value) }),
    );
  }
  const labelEvery = Math.max(1, Math.ceil(points.length / 8));
  points.forEach((point, index) => {
    if (index % labelEvery !== 0 && index !== points.length - 1) return;
    if (index !== points.length - 1 && points.length - 1 - index < labelEvery / 2) return;
    chart.append(svg("text", {
      class: "axis",
      x: x(index).toFixed(1),
      y: height - margin.bottom + 18,
      "text-anchor": index === points.length - 1 && points.length > 1 ? "end" : index === 0 ? "start" : "middle",
      text: point.period,
    }));
  });
  if (target) {
    const ty = y(target.value).toFixed(1);
    chart.append(
      svg("line", { class: "target-line", x1: margin.left, x2: width - margin.right, y1: ty, y2: ty }),
      svg("text", { class: "target-label", x: width - margin.right - 4, y: ty, dy: "-0.4em", "text-anchor": "end", text: `target ${withUnit(target.value, unit)}` }),
    );
  }
  chart.append(svg("path", { class: "series-line", d: linePath(points, x, y) }));
  const radius = points.length > 60 ? 1.6 : 3.2;
  points.forEach((point, index) => {
    if (!Number.isFinite(point.value)) return;
    chart.append(svg("circle", {
      class: `point fill-${point.status}`,
      cx: x(index).toFixed(1),
      cy: y(point.value).toFixed(1),
      r: radius,
    }, svg("title", { text: `${point.period}: ${withUnit(point.value, unit)} (${statusText(point.status)})` })));
  });
  return chart;
}
