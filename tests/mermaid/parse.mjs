// Reads a JSON list of Mermaid texts on stdin; prints, as JSON, for each one either
// {"ok": "<diagram type>"} or {"error": "<mermaid's parse error>"}. Mermaid sanitizes
// labels with DOMPurify, which needs a DOM: jsdom gives it one.
import { JSDOM } from "jsdom";

const { window } = new JSDOM("");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");

let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const text of JSON.parse(input)) {
  try {
    const parsed = await mermaid.parse(text);
    out.push({ ok: parsed.diagramType });
  } catch (error) {
    out.push({ error: String(error.message ?? error) });
  }
}
process.stdout.write(JSON.stringify(out));
