// Plots of the last day or week from the store (GET /api/v1/stats/timeline): queue length,
// GPUs in use, wait and run times as lines; GPU-hours by user and project as bars.

import { api } from "./api.js";
import { clear, duration, el, shortDuration, tickLabel, userColour, when } from "./format.js";
import { niceMax, svg } from "./svg.js";

const H = 180, L = 44, B = 22, T = 10, R = 12;
let W = 480; // set to a figure's width in pixels before drawing: text stays its own size

function lineChart(title, values, start, step, format = (v) => String(+v.toFixed(1)), axis = format) {
  const max = niceMax(Math.max(0, ...values.filter((v) => v !== null)));
  const x = (i) => L + ((i + 1) / values.length) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  for (const frac of [0, 0.5, 1]) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(max * frac), y2: y(max * frac), class: "grid" }));
    chart.append(svg("text", { x: L - 4, y: y(max * frac) + 4, class: "axis", "text-anchor": "end" }, axis(max * frac)));
  }
  const span = values.length * step;
  for (const [i, anchor] of [[0, "start"], [Math.floor(values.length / 2), "middle"], [values.length - 1, "end"]]) {
    chart.append(svg("text", { x: x(i), y: H - 6, class: "axis", "text-anchor": anchor }, tickLabel(start + (i + 1) * step, span)));
  }
  let path = "";
  values.forEach((v, i) => {
    if (v === null) return;
    path += `${path && values[i - 1] !== null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
  });
  chart.append(svg("path", { d: path || "M0,0", class: "series" }));
  values.forEach((v, i) => {
    if (v === null) return;
    const dot = svg("circle", { cx: x(i), cy: y(v), r: 1.5, class: "dot" });
    dot.append(svg("title", {}, `${when(start + (i + 1) * step)}: ${format(v)}`));
    chart.append(dot);
  });
  return el("figure", {}, el("figcaption", {}, title), chart);
}

function barChart(title, pairs) {
  const shown = pairs.slice(0, 12);
  const height = Math.max(40, shown.length * 24 + 10);
  const max = niceMax(Math.max(0, ...shown.map((p) => p[1])));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${height}`, class: "chart", role: "img", "aria-label": title });
  shown.forEach(([name, hours], i) => {
    const y = 5 + i * 24;
    chart.append(svg("text", { x: 110, y: y + 14, class: "axis", "text-anchor": "end" }, name.slice(0, 16)));
    chart.append(svg("rect", { x: 116, y, height: 18, width: Math.max(1, ((W - 180) * hours) / max), fill: userColour(name), rx: 2 }));
    chart.append(svg("text", { x: 120 + ((W - 180) * hours) / max, y: y + 14, class: "axis" }, hours < 0.01 ? "<0.01" : hours < 1 ? hours.toFixed(2) : hours.toFixed(1)));
  });
  if (!shown.length) chart.append(svg("text", { x: 10, y: 24, class: "axis" }, "no GPU time in this window"));
  return el("figure", {}, el("figcaption", {}, title), chart);
}

export function plotsPage(root, jobs) {
  let window = "day";
  const grid = el("div", { class: "plots", "data-testid": "plots" });
  const pick = (name) => el("button", { class: "toggle", "data-window": name, onclick: () => { window = name; reload(); } }, `last ${name}`);
  const choices = el("div", { class: "filters" }, pick("day"), pick("week"));
  clear(root).append(el("h1", {}, "Plots"), choices, grid);

  async function load() {
    const t = await api("GET", `/api/v1/stats/timeline?window=${window}`);
    const columns = grid.clientWidth >= 2 * 440 + 14 ? 2 : 1; // as .plots in style.css
    W = Math.max(280, Math.floor((grid.clientWidth - (columns - 1) * 14) / columns));
    for (const b of choices.children) b.classList.toggle("on", b.dataset.window === window);
    clear(grid).append(
      lineChart("Queue length (jobs waiting)", t.queue_length, t.start, t.step),
      lineChart("GPUs in use", t.gpus_in_use, t.start, t.step),
      lineChart("Median wait of jobs started", t.wait_median, t.start, t.step, duration, shortDuration),
      lineChart("Median run time of jobs ended", t.run_median, t.start, t.step, duration, shortDuration),
      barChart("GPU-hours by user", t.gpu_hours_by_user),
      barChart("GPU-hours by project", t.gpu_hours_by_project),
    );
  }

  const reload = () => load().catch((error) => { clear(grid).append(el("p", { class: "error" }, error.message)); });
  const timer = setInterval(reload, 60000);
  reload();
  return () => clearInterval(timer);
}
