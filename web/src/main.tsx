import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app.js";
import { readWebConfig } from "./config/web-config.js";
import { PorticoProvider } from "./portico-provider.js";
import "./styles.css";

const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root element");

createRoot(root).render(
  <StrictMode>
    <PorticoProvider config={readWebConfig(import.meta.env)}>
      <App />
    </PorticoProvider>
  </StrictMode>,
);
