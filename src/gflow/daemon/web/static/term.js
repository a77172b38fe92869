// A log as a terminal would show it, as plain selectable text: "\r\n" ends a line, a bare
// "\r" starts the line over (the last segment of a progress bar wins), backspace takes a
// character back, and escape sequences (colours, cursor moves) are dropped.

const ESCAPES = /\x1b(?:\[[0-?]*[ -\/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;
const MAX_LINES = 20000; // kept in the page; older lines are dropped from the top

export class Terminal {
  constructor(pre) {
    this.pre = pre;
    this.decoder = new TextDecoder("utf-8");
    this.done = document.createTextNode("");
    this.current = document.createElement("span");
    pre.append(this.done, this.current);
    this.line = "";
    this.carriage = false; // a "\r" seen last: the line restarts unless "\n" follows
    this.pendingEscape = "";
    this.lines = 0;
  }

  writeBytes(bytes) {
    this.write(this.decoder.decode(bytes, { stream: true }));
  }

  write(raw) {
    let text = this.pendingEscape + raw;
    this.pendingEscape = "";
    const cut = text.lastIndexOf("\x1b");
    if (cut >= 0 && cut > text.length - 64 && !/[@-~]/.test(text.slice(cut + 2))) {
      this.pendingEscape = text.slice(cut); // an escape sequence split between chunks
      text = text.slice(0, cut);
    }
    text = text.replace(ESCAPES, "");
    const finished = [];
    for (const ch of text) {
      if (ch === "\n") {
        finished.push(this.line);
        this.line = "";
        this.carriage = false;
      } else if (ch === "\r") {
        this.carriage = true;
      } else {
        if (this.carriage) {
          this.line = "";
          this.carriage = false;
        }
        if (ch === "\b") this.line = this.line.slice(0, -1);
        else if (ch >= " " || ch === "\t") this.line += ch;
      }
    }
    if (finished.length) {
      this.done.appendData(finished.join("\n") + "\n");
      this.lines += finished.length;
      if (this.lines > MAX_LINES) this.trim();
    }
    this.current.textContent = this.line;
  }

  trim() {
    const all = this.done.data;
    let drop = this.lines - MAX_LINES;
    let at = 0;
    while (drop-- > 0) at = all.indexOf("\n", at) + 1;
    this.done.deleteData(0, at);
    this.lines = MAX_LINES;
  }

  text() {
    return this.done.data + this.line;
  }
}
