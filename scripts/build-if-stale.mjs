#!/usr/bin/env node
// Compiles the TypeScript (tsc -p tsconfig.json) only when a source is newer
// than the last build, so the helper commands (`npm run psql`, `gm`,
// `migrate`, `prune`, `cluster`, `start`) start at once when nothing
// changed: an incremental tsc still takes seconds just to find that out.
// Plain JavaScript on purpose: it runs before anything is compiled.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.built-at');
const inputs = ['src', 'scripts', 'bench'];

/** The newest modification time of the build's inputs (and its configuration). */
function newestInput() {
  let newest = Math.max(...['tsconfig.json', 'package-lock.json'].map((f) => fs.statSync(path.join(root, f)).mtimeMs));
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
    }
  };
  for (const dir of inputs) walk(path.join(root, dir));
  return newest;
}

const builtAt = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
if (builtAt > newestInput()) process.exit(0);
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
