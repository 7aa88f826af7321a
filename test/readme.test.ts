/**
 * The README's curl walkthrough, run as a reader would run it (bash, curl,
 * node) against a fresh server, must print what the README says it
 * prints (times aside). It once used an undefined `$A` and answered 401.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { projectRoot } from '../src/paths';
import { buildTestApp, listen } from './helpers/app';

const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');

t.test('the README stays a front door', async (t) => {
  const lines = readme.split('\n').length;
  t.ok(lines < 300, `under 300 lines (${lines})`);
  t.notMatch(readme, /\.\.\/shared/, 'no link leaves the repository');
  for (const [, target] of readme.matchAll(/\]\((docs\/[^)#]+)/g)) {
    t.ok(fs.existsSync(path.join(projectRoot, target!)), `${target} exists`);
  }
  for (const file of fs.readdirSync(path.join(projectRoot, 'docs'))) {
    const text = fs.readFileSync(path.join(projectRoot, 'docs', file), 'utf8');
    t.notMatch(text, /\.\.\/shared|\bissues? \d+/i, `docs/${file} is written for users: no outside links, no issue numbers`);
    for (const [, target] of text.matchAll(/\]\(([a-z-]+\.md)/g)) {
      t.ok(fs.existsSync(path.join(projectRoot, 'docs', target!)), `docs/${file} → ${target} exists`);
    }
  }
});

t.test('the curl walkthrough prints what the README shows', async (t) => {
  const script = /<!-- walkthrough:start -->\n```sh\n([\s\S]*?)```\n<!-- walkthrough:end -->/.exec(readme)?.[1];
  const shown = /On a fresh database it prints[^\n]*\n\n```\n([\s\S]*?)```/.exec(readme)?.[1];
  t.ok(script && shown, 'the README has the walkthrough and its output');
  const { app } = await buildTestApp(t);
  const base = await listen(app);
  // Asynchronously: the server answering it lives in this process.
  const run = await new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile('bash', ['-eo', 'pipefail', '-c', script!], { env: { ...process.env, B: base }, encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) => resolve({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
  t.equal(run.status, 0, `it runs to the end${run.stderr ? `: ${run.stderr}` : ''}`);
  const times = (text: string) => text.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z/g, '<time>');
  t.equal(times(run.stdout), times(shown!), 'and prints what the README shows');
});
