import { createContext, useContext } from "react";
import type { PorticoProtocol } from "../config/web-config.js";

export interface ProtocolChoice {
  readonly protocol: PorticoProtocol;
  readonly setProtocol: (protocol: PorticoProtocol) => void;
}

export const ProtocolContext = createContext<ProtocolChoice | undefined>(undefined);

/** The protocol the app speaks to the gateway, and a way to switch it at run time. */
export function useProtocol(): ProtocolChoice {
  const choice = useContext(ProtocolContext);
  if (!choice) throw new Error("useProtocol must be used inside <PorticoProvider>");
  return choice;
}
