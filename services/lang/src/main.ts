import { runBackend } from "@portico/kit";
import { startLang } from "./start-lang.js";

runBackend("lang", startLang);
