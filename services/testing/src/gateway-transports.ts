import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

/** A transport of each protocol the gateway speaks to its clients. */
export interface GatewayTransports {
  /** Connect over HTTP/2. */
  connect: Transport;
  grpc: Transport;
  /** gRPC-web over HTTP/2. */
  grpcWeb: Transport;
  /** Connect over HTTP/1.1. */
  connectHttp1: Transport;
}

/** Transports of every protocol to the gateway at `baseUrl`. */
export function createGatewayTransports(baseUrl: string): GatewayTransports {
  return {
    connect: createConnectTransport({ baseUrl, httpVersion: "2" }),
    grpc: createGrpcTransport({ baseUrl }),
    grpcWeb: createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
    connectHttp1: createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  };
}
