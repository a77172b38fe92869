// The submit form: `gbatch --command CMD` with its common flags, checked by the daemon
// with gbatch's own parser, so a mistake reads as it would in the terminal.

import { api } from "./api.js";
import { clear, el } from "./format.js";

const FIELDS = [
  ["command", "Command", "python train.py --lr 0.01", true],
  ["name", "Name", "train"],
  ["gpus", "GPUs", "1"],
  ["mem", "Memory", "16G"],
  ["time", "Time limit", "2h"],
  ["depends_on", "Depends on", "afterok:12"],
  ["project", "Project", ""],
  ["workdir", "Directory", "your home directory"],
];

export function submitPage(root, jobs, session) {
  const message = el("p", { class: "message", role: "status", "data-testid": "message" });
  if (!session.user) {
    clear(root).append(el("h1", {}, "Submit"), el("p", { class: "note" }, "Sign in with the link `gflowd web` prints to submit jobs."));
    return () => {};
  }
  const inputs = {};
  const form = el("form", { class: "submit", onsubmit: (e) => { e.preventDefault(); send(); } },
    ...FIELDS.map(([key, label, placeholder, wide]) => {
      inputs[key] = el("input", { name: key, placeholder, autocomplete: "off", required: key === "command" });
      return el("label", { class: wide ? "wide" : "" }, el("span", {}, label), inputs[key]);
    }),
    el("button", { type: "submit" }, "Submit"));
  clear(root).append(el("h1", {}, "Submit a job"), form, message);

  async function send() {
    message.classList.remove("error");
    const body = Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, input.value]));
    try {
      const done = await api("POST", "/web/api/submit", body);
      const id = done.jobs[0].id;
      clear(message).append("Submitted ", el("a", { href: `#/job/${id}` }, `job ${id}`));
      jobs.want(id);
    } catch (error) {
      message.textContent = error.message;
      message.classList.add("error");
    }
  }
  return () => {};
}
