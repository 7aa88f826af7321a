/**
 * Runs every test/sql/*.sql check through psql, the way a DBA would, against
 * a fresh database. Each "ok - …" line a script prints is one assertion; a
 * failing assertion raises "not ok - …", psql stops and exits non-zero.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { projectRoot } from '../src/paths';
import { createTestDatabase } from './helpers/db';

const sqlDir = path.join(projectRoot, 'test', 'sql');
const scripts = fs.readdirSync(sqlDir).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();

t.test('psql checks', async (t) => {
  t.ok(scripts.length >= 6, 'the psql checks are present');
  const db = await createTestDatabase(t);
  for (const script of scripts) {
    await t.test(script, async (t) => {
      const text = fs.readFileSync(path.join(sqlDir, script), 'utf8');
      const plan = Number(/^-- plan: (\d+)/m.exec(text)?.[1]);
      t.ok(plan > 0, 'the script declares its plan');
      const result = spawnSync(
        'psql',
        ['-X', '-q', '-v', `visitor=${db.visitorRole}`, '-d', db.url, '-f', path.join('test', 'sql', script)],
        { cwd: projectRoot, encoding: 'utf8' },
      );
      const oks = result.stdout.split('\n').filter((line) => line.startsWith('ok - '));
      for (const line of oks) t.pass(line.slice(5));
      t.equal(result.status, 0, `psql exits 0${result.stderr ? `: ${result.stderr.trim()}` : ''}`);
      t.equal(oks.length, plan, 'every planned assertion ran');
    });
  }
});
