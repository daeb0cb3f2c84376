import type { Database, Queryable } from "./database.js";
import { activeTracing } from "./tracing.js";

/** `query` in a span (when tracing is on), the rest of `target` as it is. */
function traced<T extends Queryable>(target: T): T {
  const wrapper = Object.create(target) as T;
  wrapper.query = (sql, params) => {
    const tracing = activeTracing();
    return tracing === undefined ? target.query(sql, params) : tracing.query(sql, () => target.query(sql, params));
  };
  return wrapper;
}

/**
 * The database with every query (in a transaction too) a span of its own, a child of the call it
 * runs for, while tracing is on (`startTracing`); while it is off a query costs one check more.
 * The one-line hook where a service opens its database: `traceDatabase(await openDatabase(…))`.
 */
export function traceDatabase<D extends Database>(db: D): D {
  const wrapper = traced(db);
  wrapper.transaction = (fn) => db.transaction((tx) => fn(traced(tx)));
  return wrapper;
}
