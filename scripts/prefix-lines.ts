// The supervisor's log: every line of a service prefixed with its name (coloured on a terminal,
// where JSON log lines also become "level message {rest}").
import { createInterface } from "node:readline";

export interface PrefixLinesOptions {
  name: string;
  /** ANSI colour of the name on a terminal. */
  color: number;
  input: NodeJS.ReadableStream;
  output: NodeJS.WriteStream;
  /** Called with every line, e.g. to keep the last one as a service's reason for exiting. */
  onLine?: (line: string) => void;
}

export function prefixLines({ name, color, input, output, onLine }: PrefixLinesOptions): void {
  const tty = output.isTTY;
  const tag = tty ? `\x1b[${color}m${name.padEnd(8)}\x1b[0m│ ` : `${name.padEnd(8)}│ `;
  createInterface({ input }).on("line", (line) => {
    onLine?.(line);
    output.write(`${tag}${tty ? pretty(line) : line}\n`);
  });
}

/** A JSON log line as "level message {rest}". */
function pretty(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const { level, msg, time: _time, service: _service, pid: _pid, hostname: _host, ...rest } = JSON.parse(line);
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
    return `${String(level).padEnd(5)} ${msg ?? ""}${extra}`;
  } catch {
    return line;
  }
}
