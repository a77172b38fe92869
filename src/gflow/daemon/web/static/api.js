// Requests to the daemon: the session's CSRF token on every one (the daemon treats a
// request without it as anonymous), and the daemon's one-line error messages as Errors.

const KEY = "gflow.csrf";

// The login redirect hands the token over once, in the URL fragment; it is kept in this
// origin's localStorage (other ports of this host cannot read it) and removed from the URL.
export function takeToken() {
  const found = /(?:^#|&)csrf=([\w-]+)/.exec(location.hash);
  if (found) {
    localStorage.setItem(KEY, found[1]);
    history.replaceState(null, "", location.pathname + "#/queue");
  }
  return localStorage.getItem(KEY) || "";
}

export function forgetToken() {
  localStorage.removeItem(KEY);
}

export function token() {
  return localStorage.getItem(KEY) || "";
}

export class ApiError extends Error {
  constructor(status, message, hint) {
    super(hint ? `${message}; ${hint}` : message);
    this.status = status;
  }
}

export async function api(method, path, body) {
  const headers = { "X-CSRF-Token": token() };
  const init = { method, headers, credentials: "same-origin" };
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

// An EventSource URL carries the token as a query parameter: EventSource sends no headers.
export function streamUrl(path) {
  const sep = path.includes("?") ? "&" : "?";
  return `${path}${sep}csrf=${encodeURIComponent(token())}`;
}

// Listing answers are {"fields": [...], "rows": [[...]]}: rows as objects.
export function rowsOf(listing) {
  return listing.rows.map((row) => Object.fromEntries(listing.fields.map((f, i) => [f, row[i]])));
}
