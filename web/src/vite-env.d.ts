/// <reference types="vite/client" />

interface ImportMetaEnv {
  readonly VITE_PORTICO_URL?: string;
  readonly VITE_PORTICO_PROTOCOL?: string;
}
