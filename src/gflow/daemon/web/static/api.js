// Requests to the daemon: the session's id and CSRF token on every one (the daemon treats
// a request without both as anonymous), and the daemon's one-line error messages as Errors.
// Both are kept in this origin's localStorage, which no other port of this host can read
// or write (unlike cookies, which every port shares), and reach it only from the daemon's
// answer to this page's own sign-in.

const SESSION = "gflow.session";
const CSRF = "gflow.csrf";

// A login link (`gflowd web`) carries its one-time token in the fragment: taken once, and
// removed from the URL and the history before anything else happens.
export function takeLoginToken() {
  const found = /^#login=([\w-]{1,100})$/.exec(location.hash);
  if (!found) return "";
  history.replaceState(null, "", location.pathname + "#/queue");
  return found[1];
}

export function keepSession(answer) {
  localStorage.setItem(SESSION, answer.session);
  localStorage.setItem(CSRF, answer.csrf);
}

export function forgetSession() {
  localStorage.removeItem(SESSION);
  localStorage.removeItem(CSRF);
}

function credentials() {
  return { "X-Gflow-Session": localStorage.getItem(SESSION) || "",
           "X-CSRF-Token": localStorage.getItem(CSRF) || "" };
}

export class ApiError extends Error {
  constructor(status, message, hint) {
    super(hint ? `${message}; ${hint}` : message);
    this.status = status;
  }
}

export async function api(method, path, body) {
  const headers = credentials();
  const init = { method, headers, credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, `the daemon answered ${response.status}`);
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.message || `HTTP ${response.status}`, error.hint);
  }
  return data;
}

// An EventSource URL carries both as query parameters: EventSource sends no headers.
export function streamUrl(path) {
  const sent = credentials();
  const sep = path.includes("?") ? "&" : "?";
  return `${path}${sep}session=${encodeURIComponent(sent["X-Gflow-Session"])}` +
    `&csrf=${encodeURIComponent(sent["X-CSRF-Token"])}`;
}

// Listing answers are {"fields": [...], "rows": [[...]]}: rows as objects.
export function rowsOf(listing) {
  return listing.rows.map((row) => Object.fromEntries(listing.fields.map((f, i) => [f, row[i]])));
}
