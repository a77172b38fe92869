// A job's page: every field `gjob show` has, its events, its dependencies as a graph, its
// log as it is written, and the actions the CLI has (the daemon decides who may).

import { api, streamUrl } from "./api.js";
import { ACTIVE, clear, duration, el, when } from "./format.js";
import { dependencyGraph } from "./graph.js";
import { Terminal } from "./term.js";

const TAIL = 2 * 1048576; // bytes of a long log shown: its end
const TIMES = new Set(["submitted_at", "started_at", "finished_at", "begin_at"]);

function shownValue(key, value) {
  if (value === null || value === undefined || value === "") return "";
  if (TIMES.has(key)) return `${when(value)} (${new Date(value * 1000).toISOString()})`;
  if (key === "time_limit") return duration(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function jobPage(root, jobs, session, id) {
  const title = el("h1", {}, `Job ${id}`);
  const badge = el("span", { class: "badge", "data-testid": "state" });
  const message = el("p", { class: "message", role: "status", "data-testid": "message" });
  const actions = el("div", { class: "actions" });
  const fields = el("dl", { class: "fields", "data-testid": "fields" });
  const events = el("ol", { class: "events", "data-testid": "events" });
  const graph = el("div", { class: "graph" });
  const pre = el("pre", { class: "log", "data-testid": "log" });
  const logNote = el("span", { class: "note" });
  clear(root).append(
    el("a", { href: "#/queue", class: "back" }, "← queue"),
    el("div", { class: "title" }, title, badge), message, actions,
    el("div", { class: "job-grid" },
      el("section", {}, el("h2", {}, "Log ", logNote), pre),
      el("section", {}, el("h2", {}, "Dependencies"), graph, el("h2", {}, "Events"), events)),
    el("section", {}, el("h2", {}, "Fields"), fields),
  );
  let job = null;
  let log = null;
  let closed = false;

  async function load() {
    if (session.user) {
      const shown = await api("GET", `/api/v1/jobs/${id}`);
      job = { ...shown.job, attempts: shown.attempts };
      clear(events).append(...shown.events.map((e) =>
        el("li", {}, el("time", {}, when(e.at)), ` ${e.kind} → ${e.state}`, e.detail ? ` (${e.detail})` : "")));
    } else {
      await jobs.fetchIds([id]);
      job = jobs.byId.get(id);
      if (!job) throw new Error(`job ${id} does not exist`);
      clear(events).append(el("li", { class: "note" }, "Sign in to see the job's events."));
    }
    render();
  }

  function render() {
    title.textContent = `Job ${job.id}: ${job.name}`;
    badge.textContent = job.state;
    badge.dataset.state = job.state;
    clear(fields);
    for (const [key, value] of Object.entries(job)) {
      fields.append(el("div", {}, el("dt", {}, key), el("dd", { "data-field": key }, shownValue(key, value))));
    }
    clear(actions);
    if (session.user) {
      const button = (label, action, enabled) =>
        el("button", { disabled: !enabled, onclick: () => act(action), "data-action": action }, label);
      actions.append(
        button("Cancel", "cancel", ACTIVE.has(job.state)),
        button("Hold", "hold", job.state === "Queued"),
        button("Release", "release", job.state === "Hold"),
        button("Redo", "redo", !ACTIVE.has(job.state)),
      );
    }
    const downstream = [...jobs.byId.values()].filter((j) => (j.depends_on || []).includes(job.id));
    clear(graph).append(dependencyGraph(job, jobs, downstream));
    startLog();
  }

  async function act(action) {
    message.textContent = "";
    try {
      const done = await api("POST", `/api/v1/jobs/${id}/${action}`, {});
      if (action === "redo") {
        const made = done.jobs.map((j) => j.id).join(", ");
        message.textContent = `Submitted job ${made} (a redo of ${id})`;
      } else {
        message.textContent = `Job ${id}: ${done.job.state}`;
      }
      await load();
    } catch (error) {
      message.textContent = error.message;
      message.classList.add("error");
    }
  }

  function startLog() {
    if (log || closed) return;
    if (!session.user) {
      logNote.textContent = "Sign in (gflowd web) to read the log: logs are their owner's.";
      pre.hidden = true;
      return;
    }
    if (session.user !== job.user && !session.admin) {
      logNote.textContent = `The log is ${job.user}'s: only they (and admins) can read it.`;
      pre.hidden = true;
      return;
    }
    const terminal = new Terminal(pre);
    log = new EventSource(streamUrl(`/web/api/jobs/${id}/log/stream?offset=0&tail=${TAIL}`));
    let first = true;
    logNote.textContent = ACTIVE.has(job.state) ? "following…" : "";
    log.addEventListener("chunk", (m) => {
      const chunk = JSON.parse(m.data);
      if (first && chunk.offset > 0) {
        pre.before(el("p", { class: "note" }, `… the first ${(chunk.offset / 1048576).toFixed(1)} MB are not shown (gjob log ${id} has all of it)`));
      }
      first = false;
      const bytes = Uint8Array.from(atob(chunk.data), (c) => c.charCodeAt(0));
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      terminal.writeBytes(bytes);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
    log.addEventListener("end", () => {
      logNote.textContent = "the job has ended";
      log.close();
    });
    log.onerror = () => {
      if (log.readyState === EventSource.CLOSED) logNote.textContent = "the log is not available";
    };
  }

  const stop = jobs.onEvent((event) => {
    if (event.job_id === id) load().catch(() => {});
  });
  load().catch((error) => { message.textContent = error.message; message.classList.add("error"); });
  return () => { closed = true; stop(); if (log) log.close(); };
}
