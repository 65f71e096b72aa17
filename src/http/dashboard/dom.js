// DOM helpers. Text always goes in through textContent (never parsed as markup), so names,
// units and titles from the configuration are shown, not parsed.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An HTML element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** An SVG element with attributes and children. */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attributes);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, String(value));
  }
}

/** GETs JSON from the daemon; throws with the status on failure. */
export async function getJson(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

const STATUS_TEXT = { green: "Green", amber: "Amber", red: "Red", none: "No status" };

/** The words for a status (shown beside its colour, never colour alone). */
export function statusText(status) {
  return STATUS_TEXT[status] ?? "No status";
}

/** A number for people: grouped thousands, at most two decimals (one above 1,000). */
export function formatNumber(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const digits = Math.abs(value) >= 1000 ? 0 : Math.abs(value) >= 100 ? 1 : 2;
  return new Intl.NumberFormat("en", { maximumFractionDigits: digits }).format(value);
}

/** A value with its unit: "41,230 EUR", "92.5%", "1.2 h". */
export function withUnit(value, unit) {
  const number = formatNumber(value);
  if (number === "—" || !unit) return number;
  return unit === "%" ? `${number}%` : `${number} ${unit}`;
}
