import react from "@vitejs/plugin-react";
import { defaultClientConditions, defineConfig } from "vite";

// `npm run dev -w web`: Vite with hot reload. RPCs go to the page's own origin and Vite proxies
// them to the gateway (PORTICO_GATEWAY_URL, default http://localhost:8080), so cookies stay
// first-party and no CORS is needed. Set VITE_PORTICO_URL to call a gateway directly instead
// (that gateway must allow this origin with credentials in its CORS settings).
const gateway = process.env.PORTICO_GATEWAY_URL ?? "http://localhost:8080";

export default defineConfig({
  plugins: [react()],
  resolve: {
    // @portico/gen exports TypeScript source under the "source" condition.
    conditions: ["source", ...defaultClientConditions],
  },
  server: {
    port: Number(process.env.PORTICO_WEB_PORT ?? 5173),
    proxy: {
      // Every RPC path: /<package>.<Service>/<Method>
      "^/[a-z][a-z0-9_]*(\\.[a-z0-9_]+)*\\.[A-Z][A-Za-z0-9]*/": { target: gateway, changeOrigin: false, xfwd: true },
    },
  },
  build: {
    outDir: "dist",
    sourcemap: true,
    emptyOutDir: true,
  },
});
