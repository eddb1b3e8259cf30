/**
 * The terminal side of the CLI, kept small: colours (only on a terminal, never with NO_COLOR),
 * a spinner, durations, and a live region that is redrawn in place below the lines already
 * printed.
 * @module
 */

/** How output looks: `tty` redraws in place; `color` adds ANSI colours. */
export interface Style {
  readonly tty: boolean;
  readonly color: boolean;
  /** Terminal width (columns) for the live region; lines are cut to it. */
  readonly columns: number;
}

/**
 * The style for a stream: colours only on a terminal and never when NO_COLOR is set (to anything
 * but the empty string, as no-color.org says).
 */
export function styleFor(
  isTerminal: boolean,
  env: { noColor?: string | undefined },
  columns = 80,
): Style {
  const noColor = env.noColor !== undefined && env.noColor !== "";
  return { tty: isTerminal, color: isTerminal && !noColor, columns };
}

const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
} as const;

/** A colour or weight. */
export type Paint = keyof typeof CODES;

/** `text` in `paint` when the style has colour, else as it is. */
export function paint(style: Style, name: Paint, text: string): string {
  if (!style.color) return text;
  const [open, close] = CODES[name];
  return `\x1b[${open}m${text}\x1b[${close}m`;
}

/** Braille spinner frames. */
export const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"] as const;

/** The spinner frame for a time (one frame per 80 ms). */
export function spinnerFrame(now: number): string {
  return SPINNER[Math.floor(now / 80) % SPINNER.length]!;
}

/** `850ms`, `2.1s`, `1m05s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.floor((ms % 60_000) / 1000);
  return `${minutes}m${String(seconds).padStart(2, "0")}s`;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/y;

/** The characters of `line` a terminal shows (ANSI sequences removed). */
export function visible(line: string): string {
  // deno-lint-ignore no-control-regex
  return line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
}

/** Cuts `line` to `width` visible characters (ANSI sequences kept, colours reset after a cut). */
export function fit(line: string, width: number): string {
  let out = "";
  let shown = 0;
  for (let i = 0; i < line.length;) {
    ANSI.lastIndex = i;
    const match = ANSI.exec(line);
    if (match !== null) {
      out += match[0];
      i += match[0].length;
      continue;
    }
    const char = String.fromCodePoint(line.codePointAt(i)!);
    if (shown === width - 1 && i + char.length < line.length) {
      return `${out}…${line.includes("\x1b[") ? "\x1b[0m" : ""}`;
    }
    out += char;
    shown++;
    i += char.length;
  }
  return out;
}

/**
 * Lines printed for good, and below them a block redrawn in place (on a terminal). Off a
 * terminal the block is never written: only the lines for good are.
 */
export class LiveRegion {
  readonly #write: (text: string) => void;
  readonly #style: Style;
  #liveRows = 0;

  constructor(style: Style, write: (text: string) => void) {
    this.#style = style;
    this.#write = write;
  }

  /** Prints `lines` for good and redraws the live block as `live`. */
  render(lines: readonly string[], live: readonly string[] = []): void {
    if (!this.#style.tty) {
      if (lines.length > 0) this.#write(lines.map((line) => `${line}\n`).join(""));
      return;
    }
    let out = this.#liveRows > 0 ? `\x1b[${this.#liveRows}A\r\x1b[J` : "";
    for (const line of lines) out += `${line}\n`;
    for (const line of live) out += `${fit(line, this.#style.columns)}\n`;
    this.#liveRows = live.length;
    if (out !== "") this.#write(out);
  }

  /** Removes the live block (before exiting). */
  clear(): void {
    this.render([], []);
  }
}
