import { EventEmitter, on } from "node:events";
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "@portico/gen/grpc/health/v1/health_pb.js";

/** Serving status of the whole server ("") and of each service by its full name. */
export interface HealthStatus {
  set(service: string, serving: boolean): void;
  get(service: string): boolean | undefined;
  /** Registers `grpc.health.v1.Health` (Check and Watch) on a router. */
  register(router: ConnectRouter): void;
}

export function createHealthStatus(): HealthStatus {
  const statuses = new Map<string, boolean>([["", true]]);
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const status = (service: string) => {
    const value = statuses.get(service);
    if (value === undefined) return Status.SERVICE_UNKNOWN;
    return value ? Status.SERVING : Status.NOT_SERVING;
  };
  return {
    set(service, serving) {
      if (statuses.get(service) === serving) return;
      statuses.set(service, serving);
      changes.emit("change", service);
    },
    get: (service) => statuses.get(service),
    register(router) {
      router.service(Health, {
        check(req) {
          const s = status(req.service);
          if (s === Status.SERVICE_UNKNOWN) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
          return create(HealthCheckResponseSchema, { status: s });
        },
        async *watch(req, ctx: HandlerContext) {
          let last = status(req.service);
          yield create(HealthCheckResponseSchema, { status: last });
          for await (const [service] of on(changes, "change", { signal: ctx.signal })) {
            if (service !== req.service) continue;
            const next = status(req.service);
            if (next === last) continue;
            last = next;
            yield create(HealthCheckResponseSchema, { status: next });
          }
        },
      });
    },
  };
}
