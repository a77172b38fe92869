// Reservations on a timeline: a row per GPU, from now on; reservations as bars in their
// user's colour, and running jobs until their time limit ends them.

import { api } from "./api.js";
import { clear, el, tickLabel, userColour, when } from "./format.js";
import { svg } from "./svg.js";

const HOUR = 3600;
const LEFT = 56, ROW = 34, TOP = 24;

export function reservationsPage(root, jobs) {
  const box = el("div", { class: "timeline", "data-testid": "timeline" });
  const list = el("table", { class: "plain" });
  const legend = el("p", { class: "legend" },
    el("span", { class: "key job" }), " running job, until its time limit ",
    el("span", { class: "key job open" }), " running, no time limit ",
    el("span", { class: "key reservation" }), " reservation (its user's colour)");
  clear(root).append(el("h1", {}, "Reservations"), legend, box, list);

  async function load() {
    const view = await api("GET", "/api/v1/reservations");
    const WIDTH = Math.max(340, box.clientWidth); // drawn at its size: labels stay legible
    const now = view.now;
    const ends = [...view.reservations.map((r) => r.end), ...view.running.map((j) => j.ends_by || 0)];
    const until = Math.max(now + 24 * HOUR, ...ends.filter((e) => e < now + 30 * 24 * HOUR));
    const x = (t) => LEFT + ((Math.min(Math.max(t, now), until) - now) / (until - now)) * (WIDTH - LEFT - 10);
    const gpus = view.gpus.length ? view.gpus : [0];
    const height = TOP + gpus.length * ROW + 10;
    const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "chart", role: "img", "aria-label": "reservations timeline" });
    const hours = (until - now) / HOUR;
    const perTick = (HOUR * hours) / Math.max(1, Math.floor((WIDTH - LEFT) / 70)); // ≥70 px apart
    const tick = [1, 2, 3, 6, 12, 24, 48, 168].find((h) => h * HOUR >= perTick) || 168;
    for (let t = Math.ceil(now / (tick * HOUR)) * tick * HOUR; t <= until; t += tick * HOUR) {
      chart.append(svg("line", { x1: x(t), x2: x(t), y1: TOP - 4, y2: height - 10, class: "grid" }));
      const anchor = x(t) > WIDTH - 60 ? "end" : "middle";
      chart.append(svg("text", { x: x(t), y: 14, class: "axis", "text-anchor": anchor }, tickLabel(t, until - now)));
    }
    gpus.forEach((index, row) => {
      const y = TOP + row * ROW;
      chart.append(svg("text", { x: 4, y: y + ROW / 2 + 4, class: "axis" }, `GPU ${index}`));
      // Jobs sharing a GPU are drawn as one bar, until the last of them must end.
      const here = view.running.filter((j) => j.gpu_ids.includes(index));
      if (here.length) {
        const open = here.some((j) => !j.ends_by);
        const end = open ? until : Math.max(...here.map((j) => j.ends_by));
        const bar = svg("rect", { x: x(now), y: y + 4, width: Math.max(2, x(end) - x(now)), height: ROW - 8,
          class: open ? "job open" : "job", rx: 3 });
        bar.append(svg("title", {}, here.map((j) => `job ${j.id} (${j.user})${j.ends_by ? ` until ${when(j.ends_by)}` : ", no time limit"}`).join("\n")));
        const label = `job${here.length > 1 ? "s" : ""} ${here.map((j) => j.id).join(", ")}`;
        chart.append(bar, svg("text", { x: x(now) + 4, y: y + ROW / 2 + 4, class: "label" }, label));
      }
      for (const r of view.reservations.filter((r) => r.gpu_ids.includes(index))) {
        const bar = svg("rect", { x: x(r.start), y: y + 4, width: Math.max(2, x(r.end) - x(r.start)), height: ROW - 8, rx: 3, fill: userColour(r.user), class: "reservation" });
        bar.append(svg("title", {}, `reservation ${r.id}: ${r.user}, ${when(r.start)} – ${when(r.end)}`));
        chart.append(bar, svg("text", { x: x(r.start) + 4, y: y + ROW / 2 + 4, class: "label light" }, r.user));
      }
    });
    chart.append(svg("line", { x1: x(now), x2: x(now), y1: TOP - 4, y2: height - 10, class: "now" }));
    clear(box).append(chart);
    clear(list).append(
      el("tr", {}, el("th", {}, "ID"), el("th", {}, "User"), el("th", {}, "GPUs"), el("th", {}, "From"), el("th", {}, "Until")),
      ...view.reservations.map((r) => el("tr", {}, el("td", {}, r.id), el("td", {}, r.user),
        el("td", {}, r.gpu_ids.length ? `GPU ${r.gpu_ids.join(", ")}` : `${r.gpus} (any)`), el("td", {}, when(r.start)), el("td", {}, when(r.end)))),
    );
    if (!view.reservations.length) list.append(el("tr", {}, el("td", { colspan: 5, class: "note" }, "No reservations.")));
  }

  const reload = () => load().catch((error) => { clear(box).append(el("p", { class: "error" }, error.message)); });
  const stop = jobs.onEvent((event) => { if (["started", "ended", "cancelled"].includes(event.kind)) reload(); });
  const timer = setInterval(reload, 30000);
  reload();
  return () => { stop(); clearInterval(timer); };
}
