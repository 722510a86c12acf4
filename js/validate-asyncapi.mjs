// Validate AsyncAPI documents with the official parser (@asyncapi/parser).
//   node js/validate-asyncapi.mjs asyncapi.json [...]
// Prints one JSON line per document: {"path", "valid", "version", "diagnostics": [...]};
// exits 1 when a document has an error.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const parser = new Parser();
let failed = false;
for (const path of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"), {
    source: path,
  });
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  const valid = Boolean(document) && errors.length === 0;
  if (!valid) failed = true;
  console.log(
    JSON.stringify({
      path,
      valid,
      version: document ? document.version() : null,
      diagnostics: diagnostics.map((d) => ({
        level: DiagnosticSeverity[d.severity] ?? String(d.severity),
        code: d.code,
        at: d.path.join("/"),
        message: d.message,
      })),
    }),
  );
}
process.exit(failed ? 1 : 0);
