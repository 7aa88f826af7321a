/**
 * scripts/build-if-stale.mjs, which the helper commands run first: it
 * compiles when a source changed and not otherwise (an incremental tsc
 * took seconds to find nothing to do). Exercised on a scratch project.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { projectRoot } from '../src/paths';

t.test('compiles a changed source, and nothing when nothing changed', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-build-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.mkdirSync(path.join(dir, 'src'));
  fs.mkdirSync(path.join(dir, 'bench'));
  fs.copyFileSync(path.join(projectRoot, 'scripts', 'build-if-stale.mjs'), path.join(dir, 'scripts', 'build-if-stale.mjs'));
  fs.symlinkSync(path.join(projectRoot, 'node_modules'), path.join(dir, 'node_modules'));
  fs.writeFileSync(path.join(dir, 'package-lock.json'), '{}');
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', outDir: 'dist', rootDir: '.' },
    include: ['src/**/*.ts'],
  }));
  fs.writeFileSync(path.join(dir, 'src', 'a.ts'), 'export const a: number = 1;\n');
  const run = () => spawnSync(process.execPath, [path.join(dir, 'scripts', 'build-if-stale.mjs')], { encoding: 'utf8' });
  const stamp = path.join(dir, 'dist', '.built-at');
  const out = path.join(dir, 'dist', 'src', 'a.js');

  t.equal(run().status, 0, 'the first run builds');
  t.match(fs.readFileSync(out, 'utf8'), /a = 1/, 'and writes the output');
  const first = fs.statSync(stamp).mtimeMs;
  fs.rmSync(out);
  t.equal(run().status, 0);
  t.notOk(fs.existsSync(out), 'nothing changed: tsc does not run (the removed output stays removed)');
  t.equal(fs.statSync(stamp).mtimeMs, first, 'and the stamp is untouched');

  const later = new Date(Date.now() + 2000);
  fs.writeFileSync(path.join(dir, 'src', 'a.ts'), 'export const a: number = 2;\n');
  fs.utimesSync(path.join(dir, 'src', 'a.ts'), later, later);
  t.equal(run().status, 0);
  t.match(fs.readFileSync(out, 'utf8'), /a = 2/, 'a changed source is compiled');

  fs.writeFileSync(path.join(dir, 'src', 'a.ts'), 'export const a: number = "not a number";\n');
  const evenLater = new Date(Date.now() + 4000);
  fs.utimesSync(path.join(dir, 'src', 'a.ts'), evenLater, evenLater);
  const failed = run();
  t.not(failed.status, 0, 'a type error fails the command');
  t.match(failed.stdout + failed.stderr, /TS2322/, 'with tsc\'s message');
});
