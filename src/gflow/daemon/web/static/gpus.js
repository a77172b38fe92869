// The GPUs: one memory bar each (used by our jobs, declared by shared jobs beyond what
// they use, foreign processes, free), who holds it, and why a blocked one is blocked.

import { api } from "./api.js";
import { clear, el, mb, when } from "./format.js";

const REFRESH = 10000; // ms: memory in use moves without events

function segment(kind, value, total, label) {
  const part = el("span", { class: `seg ${kind}`, title: `${label}: ${mb(value)}` });
  part.style.width = `${total ? (100 * value) / total : 0}%`;
  return part;
}

function blockedWhy(gpu, reservations, now) {
  if (!gpu.allowed) return "disabled by an admin (gctl set-gpus)";
  const held = reservations.find((r) => r.gpu_ids.includes(gpu.index) && r.start <= now && now < r.end);
  if (held) return `reserved for ${held.user} until ${when(held.end)}`;
  const foreign = (gpu.foreign || []).filter((p) => !p.ignored);
  if (foreign.length) {
    const who = foreign.map((p) => `pid ${p.pid}${p.user ? ` (${p.user})` : ""}, ${mb(p.used_mb)}`);
    return `a process outside gflow uses it: ${who.join("; ")}`;
  }
  if (gpu.exclusive) return "";
  return "";
}

export function gpusPage(root, jobs) {
  const list = el("div", { class: "gpus", "data-testid": "gpus" });
  const legend = el("p", { class: "legend" },
    el("span", { class: "seg ours" }), " our jobs ", el("span", { class: "seg declared" }),
    " declared, not yet used ", el("span", { class: "seg foreign" }), " foreign ",
    el("span", { class: "seg free" }), " free");
  const cpus = el("p", { class: "note" });
  clear(root).append(el("h1", {}, "GPUs"), legend, list, cpus);

  async function load() {
    const [{ gpus, cpus: cpu }, booked] = await Promise.all([
      api("GET", "/api/v1/gpus"), api("GET", "/api/v1/reservations"),
    ]);
    clear(list);
    if (!gpus.length) list.append(el("p", { class: "note" }, "No GPUs on this machine."));
    for (const gpu of gpus) {
      const ours = Math.max(0, gpu.used_mb - gpu.foreign_used_mb);
      const declared = (gpu.holders || []).reduce((sum, h) => sum + (h.declared_mb || 0), 0);
      const extra = Math.max(0, declared - ours);
      const free = Math.max(0, gpu.total_mb - ours - extra - gpu.foreign_used_mb);
      const holders = (gpu.holders || []).map((h) => {
        const job = jobs.byId.get(h.job);
        const who = job ? `${job.user}: ${job.name}` : "";
        return el("a", { href: `#/job/${h.job}`, class: "holder" },
          `job ${h.job}${who ? ` (${who})` : ""}${h.shared ? `, shared ${mb(h.declared_mb)}` : ", whole GPU"}`);
      });
      const why = blockedWhy(gpu, booked.reservations, booked.now);
      list.append(el("div", { class: `gpu${why ? " blocked" : ""}`, "data-gpu": gpu.index },
        el("div", { class: "gpu-head" },
          el("strong", {}, `GPU ${gpu.index}`), ` ${gpu.name || ""} `,
          el("span", { class: "note" }, `${mb(gpu.used_mb)} / ${mb(gpu.total_mb)} used`)),
        el("div", { class: "note small" },
          [["ours", ours], ["declared", extra], ["foreign", gpu.foreign_used_mb], ["free", free]]
            .filter(([, v]) => v > 0).map(([k, v]) => `${k} ${mb(v)}`).join(" · ")),
        el("div", { class: "bar" },
          segment("ours", ours, gpu.total_mb, "our jobs"),
          segment("declared", extra, gpu.total_mb, "declared"),
          segment("foreign", gpu.foreign_used_mb, gpu.total_mb, "foreign"),
          segment("free", free, gpu.total_mb, "free")),
        el("div", { class: "holders" }, holders.length ? holders : el("span", { class: "note" }, "idle")),
        why ? el("div", { class: "why" }, `Blocked: ${why}`) : null));
    }
    cpus.textContent = cpu && cpu.cpus ? `CPUs for jobs: ${cpu.cpus.length}` : "";
  }

  const reload = () => load().catch((error) => { clear(list).append(el("p", { class: "error" }, error.message)); });
  const stop = jobs.onEvent((event) => {
    if (["started", "ended", "cancelled", "gpus", "gpu_available", "gpu_blocked"].includes(event.kind)) reload();
  });
  const timer = setInterval(reload, REFRESH);
  reload();
  return () => { stop(); clearInterval(timer); };
}
