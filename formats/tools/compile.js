#!/usr/bin/env node
// Compiles a .ksy to Python with the pinned npm kaitai-struct-compiler and writes the result.
// Usage: node compile.js SPEC.ksy OUT_DIR PYTHON_PACKAGE
// The npm build exposes a library API (no CLI) and cannot set a Python package, so imports of
// opaque types (top-level `from x import X`) are rewritten to PYTHON_PACKAGE.x here.
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");
const KaitaiStructCompiler = require("kaitai-struct-compiler");

async function main() {
  const [spec, outDir, pkg] = process.argv.slice(2);
  if (!spec || !outDir || !pkg) {
    console.error("usage: node compile.js SPEC.ksy OUT_DIR PYTHON_PACKAGE");
    process.exit(2);
  }
  const obj = yaml.load(fs.readFileSync(spec, "utf8"));
  const opaque = new Set(Object.keys((obj.meta && obj.meta["-opaque-modules"]) || {}));
  const importer = {
    importYaml: () => Promise.reject(new Error("imports are not used by this project")),
  };
  const files = await KaitaiStructCompiler.compile("python", obj, importer, false);
  for (const [name, src] of Object.entries(files)) {
    let out = src.replace(/^(from|import) ([a-z_][a-z0-9_]*)( import .*)?$/gm, (line, kw, mod, rest) =>
      opaque.has(mod) ? `from ${pkg} import ${mod}` + (rest ? `\nfrom ${pkg}.${mod}${rest}` : "") : line);
    out = `# Generated from ${path.basename(spec)} by formats/tools/regenerate.sh` +
      ` (kaitai-struct-compiler ${KaitaiStructCompiler.version}). DO NOT EDIT.\n` + out;
    fs.writeFileSync(path.join(outDir, name), out);
    console.log(`wrote ${path.join(outDir, name)}`);
  }
}

main().catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
