// Validate AsyncAPI documents with the official parser (@asyncapi/parser).
//   node js/validate-asyncapi.mjs asyncapi.json [...]
// Prints every diagnostic; exits 1 when a document has an error.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const parser = new Parser();
let failed = false;
for (const path of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"), {
    source: path,
  });
  for (const d of diagnostics) {
    const level = DiagnosticSeverity[d.severity] ?? d.severity;
    console.log(`${path}: ${level} ${d.code} at ${d.path.join("/")}: ${d.message}`);
  }
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  if (!document || errors.length) failed = true;
  else console.log(`${path}: valid AsyncAPI ${document.version()}`);
}
process.exit(failed ? 1 : 0);
