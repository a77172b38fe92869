// A job's dependencies as a small SVG graph: what it waits for on the left, the job in
// the middle, what waits for it on the right; each box coloured by its state, a link.

import { el } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 120, H = 28, GAP_X = 60, GAP_Y = 10;

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function dependencyGraph(job, jobs, downstream) {
  const upstream = (job.depends_on || []).map((id) => jobs.byId.get(id) || { id, name: "", state: "" });
  const missing = (job.depends_on || []).filter((id) => !jobs.byId.has(id));
  if (missing.length) jobs.fetchIds(missing).catch(() => {});
  if (!upstream.length && !downstream.length) return el("p", { class: "note" }, "No dependencies.");
  const columns = [upstream, [job], downstream.slice(0, 30)].filter((c) => c.length);
  const middle = upstream.length ? 1 : 0;
  const rows = Math.max(...columns.map((c) => c.length));
  const width = columns.length * W + (columns.length - 1) * GAP_X, height = rows * (H + GAP_Y);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "dag", role: "img",
    "aria-label": `dependencies of job ${job.id}` });
  const centre = (col, i, n) => [col * (W + GAP_X), (height - n * (H + GAP_Y)) / 2 + i * (H + GAP_Y) + GAP_Y / 2];
  const [mx, my] = centre(middle, 0, 1);
  columns.forEach((column, col) => column.forEach((node, i) => {
    const [x, y] = centre(col, i, column.length);
    if (col < middle) root.append(svg("line", { x1: x + W, y1: y + H / 2, x2: mx, y2: my + H / 2, class: "edge" }));
    if (col > middle) root.append(svg("line", { x1: mx + W, y1: my + H / 2, x2: x, y2: y + H / 2, class: "edge" }));
  }));
  columns.forEach((column, col) => column.forEach((node, i) => {
    const [x, y] = centre(col, i, column.length);
    const link = svg("a", { href: `#/job/${node.id}` });
    link.append(
      svg("rect", { x, y, width: W, height: H, rx: 4, class: `node s-${node.state || "unknown"}` }),
      svg("text", { x: x + 6, y: y + H / 2 + 4 }, `${node.id} ${(node.name || "").slice(0, 12)}`),
    );
    root.append(link);
  }));
  return root;
}
