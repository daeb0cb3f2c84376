/** A bad setting: its message names the variable, the value and what is allowed, on one line. */
export class ConfigError extends Error {
  override name = "ConfigError";
}
