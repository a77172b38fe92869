// SVG helpers for the plots and the timeline.

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  // Steps whose half is a round number too (the middle grid line).
  for (const step of [1, 2, 4, 6, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}
