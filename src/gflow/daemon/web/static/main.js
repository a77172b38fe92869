// The dashboard's entry: who the browser is, the job list and its event stream, and the
// page the URL's fragment names (#/queue, #/job/12, #/gpus, #/reservations, #/plots).

import { api, forgetSession, keepSession, takeLoginToken } from "./api.js";
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
  if (location.hash.startsWith("#login=")) {  // a login link opened in this very tab
    location.reload();
    return;
  }
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
  forgetSession();
  location.hash = "#/queue";
  location.reload();
}

// A login link opened here: say whom it signs in, and sign in only when the person says
// so. Another local user's page can send this browser to a link of theirs; the name shown
// is then theirs, and declining keeps what was.
async function confirmSignIn(loginToken) {
  let asked;
  try {
    asked = await api("POST", "/web/api/login", { token: loginToken, confirm: false });
  } catch (error) {
    clear(view).append(el("p", { class: "error", "data-testid": "message" }, error.message));
    return;
  }
  const now = session.user && session.user !== asked.user
    ? el("p", {}, `You are signed in as ${session.user} now; this replaces that.`) : null;
  const signIn = async () => {
    try {
      keepSession(await api("POST", "/web/api/login", { token: loginToken, confirm: true }));
      location.reload();
    } catch (error) {
      panel.append(el("p", { class: "error", "data-testid": "message" }, error.message));
    }
  };
  const panel = el("section", { class: "signin", "data-testid": "signin" },
    el("h1", {}, `Sign in as ${asked.user}${asked.admin ? " (admin)" : ""}?`),
    el("p", {}, "This link signs this browser in to the dashboard as that Unix user."), now,
    el("div", { class: "actions" },
      el("button", { "data-testid": "sign-in", onclick: signIn }, `Sign in as ${asked.user}`),
      el("button", { class: "link", onclick: () => location.reload() }, "not me")));
  clear(view).append(panel);
}

async function start() {
  const loginToken = takeLoginToken();
  session = await api("GET", "/web/api/session");
  if (loginToken) {
    showWho();
    await confirmSignIn(loginToken);
    return;
  }
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
