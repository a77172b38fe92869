// Small formatting helpers shared by the pages.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  if (d) return `${d}-${pad(h)}:${pad(m)}:${pad(s % 60)}`;
  return `${pad(h)}:${pad(m)}:${pad(s % 60)}`;
}

export function when(unix) {
  if (!unix) return "";
  const date = new Date(unix * 1000);
  const now = new Date();
  const time = date.toLocaleTimeString([], { hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

export function mb(value) {
  if (value === null || value === undefined) return "";
  return value >= 1024 ? `${(value / 1024).toFixed(value % 1024 ? 1 : 0)}G` : `${value}M`;
}

export const ACTIVE = new Set(["Queued", "Hold", "Running"]);

// One colour per user, the same on every page.
export function userColour(name) {
  let hash = 0;
  for (const c of name || "") hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 55% 50%)`;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// An axis label: "14:30" within a day, "Dec 3" at midnight or for a week's span.
export function tickLabel(unix, span) {
  const date = new Date(unix * 1000);
  if (span > 2 * 86400 || (date.getHours() === 0 && date.getMinutes() === 0)) {
    const day = date.toLocaleDateString([], { month: "short", day: "numeric" });
    return span > 2 * 86400 ? `${day} ${date.getHours()}h` : day;
  }
  return date.toLocaleTimeString([], { hourCycle: "h23", hour: "2-digit", minute: "2-digit" });
}

// A duration on an axis: "90s", "12m", "3.5h", "2d".
export function shortDuration(seconds) {
  if (!(seconds > 0)) return "0";
  if (seconds < 10) return `${+seconds.toPrecision(2)}s`;
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${+(seconds / 3600).toFixed(1)}h`;
  return `${+(seconds / 86400).toFixed(1)}d`;
}
