// The queue: every loaded job, filtered and sorted, in a virtualised list (only the rows
// in view exist in the page), so 10,000 jobs scroll as smoothly as 10.

import { ACTIVE, clear, duration, el, when } from "./format.js";

const ROW = 30; // px, as in style.css
const OVERSCAN = 10;
const COLUMNS = [
  ["id", "ID", (j) => j.id],
  ["name", "Name", (j) => j.name],
  ["user", "User", (j) => j.user],
  ["state", "State", (j) => j.state],
  ["project", "Project", (j) => j.project || ""],
  ["gpus", "GPUs", (j) => gpuCell(j)],
  ["time", "Time", (j) => elapsed(j)],
  ["submitted_at", "Submitted", (j) => when(j.submitted_at)],
  ["reason", "Reason", (j) => j.reason || ""],
];
const STATES = ["", "active", "Queued", "Hold", "Running", "Finished", "Failed", "Cancelled", "Timeout"];

// "2" asked for; "2 @0,1" once it runs on GPUs 0 and 1.
function gpuCell(job) {
  if (!job.gpus) return "";
  return job.gpu_ids && job.gpu_ids.length ? `${job.gpus} @${job.gpu_ids.join(",")}` : String(job.gpus);
}

function elapsed(job) {
  if (job.started_at) return duration((job.finished_at || Date.now() / 1000) - job.started_at);
  return "";
}

function sortKey(job, key) {
  if (key === "time") return job.started_at ? (job.finished_at || Date.now() / 1000) - job.started_at : -1;
  if (key === "gpus") return (job.gpu_ids && job.gpu_ids.length) || job.gpus || 0;
  const value = job[key];
  return value === null || value === undefined ? "" : value;
}

export function queuePage(root, jobs, params) {
  const state = {
    filter: { state: params.get("state") || "", user: params.get("user") || "", project: "", name: "" },
    sort: "id",
    descending: true,
    shown: [],
  };
  const count = el("span", { class: "count", "data-testid": "count" });
  const input = (key, placeholder) =>
    el("input", {
      type: "search", placeholder, value: state.filter[key], "aria-label": placeholder,
      oninput: (e) => { state.filter[key] = e.target.value.trim(); refresh(); },
    });
  const select = el(
    "select",
    { "aria-label": "state", onchange: (e) => { state.filter.state = e.target.value; refresh(); } },
    STATES.map((s) => el("option", { value: s, text: s ? s : "active + last day", selected: s === state.filter.state })),
  );
  const head = el(
    "div",
    { class: "row head" },
    COLUMNS.map(([key, label]) =>
      el("div", { class: `c-${key}`, role: "button", onclick: () => toggleSort(key) }, label),
    ),
  );
  const spacer = el("div", { class: "spacer" });
  const scroller = el("div", { class: "scroller", "data-testid": "queue" }, spacer);
  clear(root).append(
    el("div", { class: "filters" }, select, input("user", "user"), input("project", "project"),
      input("name", "name"), count),
    el("div", { class: "table" }, head, scroller),
  );

  function toggleSort(key) {
    state.descending = state.sort === key ? !state.descending : key === "id";
    state.sort = key;
    refresh();
  }

  function matches(job) {
    const f = state.filter;
    if (f.state === "active" && !ACTIVE.has(job.state)) return false;
    if (f.state && f.state !== "active" && job.state !== f.state) return false;
    if (f.user && job.user !== f.user) return false;
    if (f.project && !(job.project || "").includes(f.project)) return false;
    if (f.name && !(job.name || "").includes(f.name)) return false;
    return true;
  }

  function refresh() {
    const shown = [...jobs.byId.values()].filter(matches);
    const { sort, descending } = state;
    shown.sort((a, b) => {
      const x = sortKey(a, sort), y = sortKey(b, sort);
      const order = x < y ? -1 : x > y ? 1 : a.id - b.id;
      return descending ? -order : order;
    });
    state.shown = shown;
    count.textContent = `${shown.length.toLocaleString()} jobs`;
    for (const cell of head.children) cell.classList.remove("asc", "desc");
    const index = COLUMNS.findIndex(([key]) => key === sort);
    head.children[index].classList.add(descending ? "desc" : "asc");
    spacer.style.height = `${shown.length * ROW}px`;
    paint();
  }

  let painted = new Map();
  function paint() {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(state.shown.length, Math.ceil((scroller.scrollTop + scroller.clientHeight) / ROW) + OVERSCAN);
    const next = new Map();
    for (let i = first; i < last; i++) {
      const job = state.shown[i];
      const key = `${job.id}`;
      let row = painted.get(key);
      if (!row) row = el("a", { class: "row", href: `#/job/${job.id}`, "data-job": job.id });
      fill(row, job);
      row.style.transform = `translateY(${i * ROW}px)`;
      next.set(key, row);
      if (!row.parentNode) spacer.append(row);
    }
    for (const [key, row] of painted) if (!next.has(key)) row.remove();
    painted = next;
  }

  function fill(row, job) {
    const cells = COLUMNS.map(([, , get]) => String(get(job)));
    const signature = cells.join("\u0000");
    if (row.dataset.signature === signature) return;
    row.dataset.signature = signature;
    row.dataset.state = job.state;
    clear(row).append(...COLUMNS.map(([key], i) => el("div", { class: `c-${key}`, title: cells[i] }, cells[i])));
  }

  let frame = 0;
  scroller.addEventListener("scroll", () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; paint(); });
  });
  const ticker = setInterval(paint, 5000); // running jobs' times move on
  const stop = jobs.onChange(() => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; refresh(); });
  });
  refresh();
  return () => { stop(); clearInterval(ticker); };
}
