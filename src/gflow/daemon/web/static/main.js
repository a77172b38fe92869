// The dashboard's entry: who the browser is, the job list and its event stream, and the
// page the URL's fragment names (#/queue, #/job/12, #/gpus, #/reservations, #/plots).

import { api, forgetToken, takeToken } from "./api.js";
import { clear, el } from "./format.js";
import { gpusPage } from "./gpus.js";
import { jobPage } from "./job.js";
import { Jobs } from "./jobs.js";
import { plotsPage } from "./plots.js";
import { queuePage } from "./queue.js";
import { reservationsPage } from "./reservations.js";
import { submitPage } from "./submit.js";

const view = document.getElementById("view");
const jobs = new Jobs();
let session = { user: null, admin: false };
let leave = () => {};

function route() {
  leave();
  const [, page = "queue", arg = ""] = location.hash.split("?")[0].split("/");
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("on", link.dataset.page === page || (page === "job" && link.dataset.page === "queue"));
  }
  document.body.dataset.page = page;
  if (page === "job" && /^\d+$/.test(arg)) leave = jobPage(view, jobs, session, Number(arg));
  else if (page === "gpus") leave = gpusPage(view, jobs);
  else if (page === "reservations") leave = reservationsPage(view, jobs);
  else if (page === "plots") leave = plotsPage(view, jobs);
  else if (page === "submit") leave = submitPage(view, jobs, session);
  else leave = queuePage(view, jobs, params);
}

function showWho() {
  const who = clear(document.getElementById("who"));
  if (session.user) {
    who.append(`${session.user}${session.admin ? " (admin)" : ""} `,
      el("button", { class: "link", onclick: signOut }, "sign out"));
  } else {
    who.append(el("span", { title: "run `gflowd web` in a terminal for a sign-in link" }, "read-only · sign in: gflowd web"));
  }
  document.getElementById("nav-submit").hidden = !session.user;
}

async function signOut() {
  try { await api("POST", "/web/logout", {}); } catch { /* already gone */ }
  forgetToken();
  location.hash = "#/queue";
  location.reload();
}

async function start() {
  takeToken();
  session = await api("GET", "/web/api/session");
  document.body.dataset.user = session.user || "";
  showWho();
  const live = document.getElementById("live");
  jobs.follow((up) => {
    live.classList.toggle("up", up);
    live.title = up ? "live: following the event stream" : "reconnecting to the event stream…";
  });
  try {
    await jobs.load();
  } catch (error) {
    clear(view).append(el("p", { class: "error", "data-testid": "message" }, error.message));
    return;
  }
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "1";
}

start().catch((error) => clear(view).append(el("p", { class: "error" }, error.message)));
