// The jobs the queue shows, kept current from the event stream: each event patches its
// job's state at once, and the jobs it names are read again (batched) for their other
// fields. Nothing here polls while the stream is up.

import { api, rowsOf, streamUrl } from "./api.js";

export const FIELDS = [
  "id", "name", "user", "state", "project", "gpus", "gpu_ids", "submitted_at",
  "started_at", "finished_at", "reason", "depends_on", "time_limit", "priority", "exit_code",
];
const DAY = 86400;
const BATCH_DELAY = 200; // ms: events arriving together are read in one request

export class Jobs {
  constructor() {
    this.byId = new Map();
    this.listeners = new Set();
    this.eventListeners = new Set();
    this.pending = new Set();
    this.timer = null;
    this.live = false;
    this.source = null;
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onEvent(listener) {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  changed() {
    for (const listener of this.listeners) listener();
  }

  // Active jobs of everyone, and every job that ended in the last day.
  async load() {
    const fields = FIELDS.join(",");
    const since = Math.floor(Date.now() / 1000 - DAY);
    const [active, recent] = await Promise.all([
      api("GET", `/api/v1/jobs?user=all&fields=${fields}`),
      api("GET", `/api/v1/jobs?user=all&all=1&ended_since=${since}&fields=${fields}`),
    ]);
    this.byId = new Map();
    for (const job of [...rowsOf(recent), ...rowsOf(active)]) this.byId.set(job.id, job);
    this.changed();
  }

  async fetchIds(ids) {
    if (!ids.length) return;
    const listing = await api(
      "GET", `/api/v1/jobs?user=all&all=1&ids=${ids.join(",")}&fields=${FIELDS.join(",")}`,
    );
    for (const job of rowsOf(listing)) this.byId.set(job.id, job);
    this.changed();
  }

  want(id) {
    this.pending.add(id);
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const ids = [...this.pending].slice(0, 500);
      for (const id of ids) this.pending.delete(id);
      this.fetchIds(ids).catch(() => {});
      if (this.pending.size) this.want(ids[0]);
    }, BATCH_DELAY);
  }

  follow(onLive) {
    const source = new EventSource(streamUrl("/web/api/events"));
    this.source = source;
    source.onopen = () => { this.live = true; onLive(true); };
    source.onerror = () => { this.live = false; onLive(false); };
    const handle = (message) => {
      const event = JSON.parse(message.data);
      const job = this.byId.get(event.job_id);
      if (job && event.state) {
        job.state = event.state;
        this.changed();
      }
      if (event.job_id > 0) this.want(event.job_id);
      for (const listener of this.eventListeners) listener(event);
    };
    for (const kind of [
      "submitted", "started", "launched", "stop", "ended", "cancelled", "held", "released",
      "updated", "limit", "gpus", "gpu_available", "gpu_blocked", "daemon_started",
    ]) source.addEventListener(kind, handle);
    source.addEventListener("resync", () => this.load().catch(() => {}));
  }
}
