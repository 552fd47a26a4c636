#!/usr/bin/env node
// A `solc` command line over the npm solcjs compiler, for tools that expect a native binary
// (py-solc-x / ape-solidity, forge, slither). It answers `--version` and `--standard-json`; imports
// are read from the base path, then each include path, and only from inside those folders and the
// `--allow-paths` list.
import { createRequire } from "node:module";
import { readFileSync, existsSync, realpathSync } from "node:fs";
import { resolve, isAbsolute, sep } from "node:path";

const require = createRequire(import.meta.url);
const solc = require("solc");

function parseArgs(argv) {
  const opts = { basePath: process.cwd(), includePaths: [], allowPaths: [], standardJson: false, version: false, file: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case "--version": opts.version = true; break;
      case "--standard-json": opts.standardJson = true; break;
      case "--base-path": opts.basePath = value(); break;
      case "--include-path": opts.includePaths.push(value()); break;
      case "--allow-paths": opts.allowPaths.push(...value().split(",").filter(Boolean)); break;
      default:
        if (!flag.startsWith("-") && opts.standardJson) opts.file = flag;
        // Other flags (--no-color, --pretty-json, ...) change nothing in standard-json mode.
    }
  }
  return opts;
}

function inside(root, path) {
  const r = resolve(root) + sep;
  return path === resolve(root) || path.startsWith(r);
}

function makeImportCallback(opts) {
  const roots = [opts.basePath, ...opts.includePaths].map((p) => resolve(p));
  const allowed = [...roots, ...opts.allowPaths.map((p) => resolve(p))];
  return (importPath) => {
    const candidates = isAbsolute(importPath) ? [importPath] : roots.map((r) => resolve(r, importPath));
    for (const candidate of candidates) {
      if (!existsSync(candidate)) continue;
      const real = realpathSync(candidate);
      if (!allowed.some((root) => inside(root, candidate) || inside(root, real))) {
        return { error: `File outside of allowed directories: ${importPath}` };
      }
      return { contents: readFileSync(candidate, "utf8") };
    }
    return { error: `File not found in base or include paths: ${importPath}` };
  };
}

const opts = parseArgs(process.argv.slice(2));
if (opts.version) {
  const v = solc.version().replace(".Emscripten.clang", "");
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${v}.Linux.g++\n`);
  process.exit(0);
}
if (!opts.standardJson) {
  process.stderr.write("solc-bridge: only --version and --standard-json are supported\n");
  process.exit(2);
}
const input = opts.file ? readFileSync(opts.file, "utf8") : readFileSync(0, "utf8");
const output = solc.compile(input, { import: makeImportCallback(opts) });
process.stdout.write(output + "\n");
