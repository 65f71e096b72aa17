// The strategy map: objectives as boxes in four perspective rows (learning and growth at
// the bottom, financial at the top, as Kaplan and Norton draw it) and a cause → effect
// arrow for every driver link, labelled with its evidence.

import { svg } from "./dom.js";

const ROWS = [
  ["financial", "Financial"],
  ["customer", "Customer"],
  ["internal", "Internal process"],
  ["learning", "Learning and growth"],
];
const SEVERITY = { red: 3, amber: 2, green: 1, none: 0 };

/** The worst status among an objective's measures ("none" when none has one). */
function worst(statuses) {
  return statuses.reduce((a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a), "none");
}

/** Splits text into lines of at most `limit` characters, at spaces where possible. */
function wrap(text, limit) {
  const lines = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && (line + " " + word).length > limit) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
    while (line.length > limit) {
      lines.push(line.slice(0, limit - 1) + "-");
      line = line.slice(limit - 1);
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** "r=0.82 · lag 2 · n=14", or "not enough data". */
export function evidenceText(link) {
  const best = link.best?.best;
  if (!best) return "not enough data";
  return `r=${best.coefficient.toFixed(2)} · lag ${best.lag} · n=${best.periods}`;
}

/**
 * The map as one SVG laid out for `width` CSS pixels. `statusOf` gives a measure id's
 * status on the scorecard.
 */
export function strategyMap(map, statusOf, width) {
  const narrow = width < 600;
  const fontSize = narrow ? 11 : 13;
  const charWidth = fontSize * 0.56;
  const pad = 8;
  const gap = narrow ? 8 : 20;
  const labelHeight = 20;
  const rowGap = narrow ? 72 : 84;

  const rows = ROWS.map(([id, title]) => ({
    id,
    title,
    objectives: map.objectives.filter((objective) => objective.perspective === id),
  }));
  // Room under each row for the labels of the arrows that leave it upwards (or arrive
  // from below): as many label lines as a row of that width needs.
  const rowOf = new Map(map.objectives.map((o) => [o.id, ROWS.findIndex(([id]) => id === o.perspective)]));
  const perLine = Math.max(1, Math.floor(width / 200));
  const gaps = ROWS.map((_, index) => {
    const crossing = map.links.filter((link) => Math.min(rowOf.get(link.driver), rowOf.get(link.effect)) === index).length;
    return Math.max(rowGap, 30 + Math.ceil(crossing / perLine) * 24);
  });
  const boxes = new Map();
  let top = 4;
  const layout = [];
  for (const row of rows) {
    const count = Math.max(row.objectives.length, 1);
    const boxWidth = Math.min(230, (width - 2 * pad - (count - 1) * gap) / count);
    const limit = Math.max(6, Math.floor((boxWidth - 14) / charWidth));
    const prepared = row.objectives.map((objective) => {
      const statuses = objective.measures.map((id) => statusOf(id) ?? "none");
      const counts = ["red", "amber", "green", "none"]
        .map((status) => [status, statuses.filter((s) => s === status).length])
        .filter(([, n]) => n > 0)
        .map(([status, n]) => `${n} ${status}`);
      return {
        objective,
        status: worst(statuses),
        lines: wrap(objective.name, limit),
        summary: wrap(counts.length ? counts.join(", ") : "no measures", limit + 2),
      };
    });
    const lineCount = Math.max(1, ...prepared.map((p) => p.lines.length));
    const summaryCount = Math.max(1, ...prepared.map((p) => p.summary.length));
    const boxHeight = 12 + lineCount * (fontSize + 3) + summaryCount * (fontSize + 1) + 4;
    const used = prepared.length * boxWidth + (prepared.length - 1) * gap;
    let left = (width - used) / 2;
    for (const item of prepared) {
      const box = { ...item, x: left, y: top + labelHeight, width: boxWidth, height: boxHeight };
      boxes.set(item.objective.id, box);
      left += boxWidth + gap;
    }
    layout.push({ row, top, height: labelHeight + boxHeight + 8 });
    top += labelHeight + boxHeight + 8 + gaps[layout.length - 1];
  }
  const height = top - gaps[ROWS.length - 1] + 4;

  const chart = svg("svg", {
    class: "strategy-map",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `Strategy map: ${map.objectives.length} objectives in four perspectives, ${map.links.length} cause and effect links`,
  });
  chart.append(svg("defs", {}, svg("marker", {
    id: "arrowhead",
    viewBox: "0 0 10 10",
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: "auto-start-reverse",
  }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));

  for (const { row, top: rowTop, height: rowHeight } of layout) {
    chart.append(
      svg("rect", { class: "map-row", x: 0, y: rowTop, width, height: rowHeight, rx: 6 }),
      svg("text", { class: "map-row-title", x: 8, y: rowTop + 14, text: row.title }),
    );
  }

  // Where each arrow meets a box: spread along the edge in the order of the other ends,
  // so arrows into one box do not share a point.
  const ends = new Map();
  const attach = (box, side, otherX, key) => {
    const id = `${box.objective.id}:${side}`;
    if (!ends.has(id)) ends.set(id, []);
    ends.get(id).push({ key, otherX });
  };
  const placed = map.links
    .map((link, index) => ({ link, index, driver: boxes.get(link.driver), effect: boxes.get(link.effect) }))
    .filter((item) => item.driver && item.effect);
  for (const item of placed) {
    const { driver, effect, index } = item;
    const up = effect.y < driver.y;
    const same = effect.y === driver.y;
    item.driverSide = same ? "top" : up ? "top" : "bottom";
    item.effectSide = same ? "top" : up ? "bottom" : "top";
    attach(driver, item.driverSide, effect.x + effect.width / 2, index);
    attach(effect, item.effectSide, driver.x + driver.width / 2, index);
  }
  const pointOn = (box, side, key) => {
    const list = ends.get(`${box.objective.id}:${side}`).slice().sort((a, b) => a.otherX - b.otherX);
    const position = list.findIndex((entry) => entry.key === key);
    const x = box.x + (box.width * (position + 1)) / (list.length + 1);
    return [x, side === "top" ? box.y : box.y + box.height];
  };

  const arrows = svg("g", { class: "arrows" });
  const labels = svg("g", { class: "arrow-labels" });
  // Labels go where they cover neither a box nor another label: the first free spot
  // along the arrow, trying its middle first.
  const taken = [...boxes.values()].map((box) => [box.x, box.y, box.x + box.width, box.y + box.height]);
  const free = ([x1, y1, x2, y2]) => taken.every(([a1, b1, a2, b2]) => x2 < a1 || x1 > a2 || y2 < b1 || y1 > b2);
  for (const item of placed) {
    const [x1, y1] = pointOn(item.driver, item.driverSide, item.index);
    const [x2, y2] = pointOn(item.effect, item.effectSide, item.index);
    let controls;
    if (item.driverSide === item.effectSide) {
      const lift = Math.min(y1, y2) - 30;
      controls = [[x1, y1], [x1, lift], [x2, lift], [x2, y2]];
    } else {
      const bend = (y2 - y1) / 2;
      controls = [[x1, y1], [x1, y1 + bend], [x2, y2 - bend], [x2, y2]];
    }
    const at = (t) => [0, 1].map((axis) => {
      const [p0, p1, p2, p3] = controls.map((point) => point[axis]);
      const u = 1 - t;
      return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3;
    });
    const text = evidenceText(item.link);
    const labelWidth = text.length * 6.2 + 6;
    // Kept inside the drawing, centred on the arrow where there is room.
    const inside = ([x, y]) => [Math.min(Math.max(x, labelWidth / 2 + 2), width - labelWidth / 2 - 2), y];
    const rect = ([x, y]) => [x - labelWidth / 2, y - 8, x + labelWidth / 2, y + 8];
    const tries = [0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.18, 0.82, 0.12, 0.88];
    const spot = tries.map((t) => inside(at(t))).find((point) => free(rect(point))) ?? inside(at(0.5));
    taken.push(rect(spot));
    const [[a, b], [c, d], [e, f], [g, h]] = controls;
    const driverName = item.driver.objective.name;
    const effectName = item.effect.objective.name;
    arrows.append(svg("path", {
      class: `arrow${item.link.best ? "" : " arrow-unproven"}`,
      d: `M${a},${b} C${c},${d} ${e},${f} ${g},${h}`,
      "marker-end": "url(#arrowhead)",
      "data-driver": item.link.driver,
      "data-effect": item.link.effect,
      "data-evidence": text,
    }, svg("title", { text: `${driverName} → ${effectName}: ${text}` })));
    labels.append(svg("text", {
      class: "arrow-label",
      x: spot[0].toFixed(1),
      y: spot[1].toFixed(1),
      dy: "0.32em",
      "text-anchor": "middle",
      text,
    }));
  }
  chart.append(arrows);

  for (const box of boxes.values()) {
    const group = svg("g", {
      class: `objective status-${box.status}`,
      "data-objective": box.objective.id,
      "data-status": box.status,
    });
    group.append(svg("rect", { class: "objective-box", x: box.x, y: box.y, width: box.width, height: box.height, rx: 6 }));
    box.lines.forEach((line, index) => {
      group.append(svg("text", {
        class: "objective-name",
        x: box.x + box.width / 2,
        y: box.y + 8 + (index + 1) * (fontSize + 3),
        "text-anchor": "middle",
        "font-size": fontSize,
        text: line,
      }));
    });
    box.summary.forEach((line, index) => {
      group.append(svg("text", {
        class: "objective-summary",
        x: box.x + box.width / 2,
        y: box.y + box.height - 7 - (box.summary.length - 1 - index) * (fontSize + 1),
        "text-anchor": "middle",
        "font-size": fontSize - 1,
        text: line,
      }));
    });
    chart.append(group);
  }
  chart.append(labels);
  return chart;
}
