/**
 * `npm run bench:export`: GET /me/export of a user with 10,000, 100,000
 * and 200,000 messages (EXPORT_SIZES; 200 characters each, 20 partners,
 * 1 in 10 of theirs edited once), against a server child on 127.0.0.1: the
 * time to the first byte and to the last, the bytes and lines, and the
 * server's resident memory before and at its peak (VmHWM). Memory that
 * grew with the export would show across the three sizes. Writes
 * bench/export.json. Local server only.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../src/paths';
import { log, makeUsers, rssMiB, scratchDatabase, startServer, stopServer, type BenchUser } from './lib';

type Run = { messages: number; firstByteMs: number; totalMs: number; bytes: number; lines: number; rssBeforeMiB: number; rssPeakMiB: number };
export type ExportBench = { date: string; command: string; runs: Run[] };

function download(port: number, who: BenchUser): Promise<{ firstByteMs: number; totalMs: number; bytes: number; lines: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/me/export', headers: { authorization: `Bearer ${who.token}` } }, (res) => {
        let firstByteMs = 0;
        let bytes = 0;
        let lines = 0;
        res.on('data', (chunk: Buffer) => {
          if (bytes === 0) firstByteMs = performance.now() - t0;
          bytes += chunk.length;
          for (const b of chunk) if (b === 10) lines++;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve({ firstByteMs, totalMs: performance.now() - t0, bytes, lines }) : reject(new Error(`export: ${res.statusCode}`))));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function run(messages: number): Promise<Run> {
  const db = await scratchDatabase('signalbox_bench_export');
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const port = 39_000 + Math.floor(Math.random() * 1000);
  try {
    const users = await makeUsers(admin, 21);
    const [me, ...partners] = users;
    await admin.query(
      `insert into app_public.messages (sender_id, receiver_id, content)
       select case when g % 2 = 0 then $1 else p end, case when g % 2 = 0 then p else $1 end, repeat('w', 190) || g
         from generate_series(1, $3::int) g, lateral (select ($2::bigint[])[1 + g % 20] as p) x`,
      [me!.id, partners.map((p) => p.id), messages],
    );
    await admin.query(`update app_public.messages set content = content || ' (edited)' where sender_id = $1 and id % 10 = 0`, [me!.id]);
    await admin.query('vacuum analyze');
    const server = await startServer(db.url, port);
    try {
      const rssBeforeMiB = rssMiB(server.pid!).now;
      const got = await download(port, me!);
      const result = { messages, ...got, rssBeforeMiB, rssPeakMiB: rssMiB(server.pid!).peak };
      log(`export of ${messages} messages: first byte ${got.firstByteMs.toFixed(0)} ms, all ${(got.totalMs / 1000).toFixed(2)} s, ${(got.bytes / 2 ** 20).toFixed(1)} MiB in ${got.lines} lines; server RSS ${rssBeforeMiB.toFixed(0)} MiB before, peak ${result.rssPeakMiB.toFixed(0)} MiB`);
      return result;
    } finally {
      await stopServer(server);
    }
  } finally {
    await admin.end();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const sizes = (process.env.EXPORT_SIZES ?? '10000,100000,200000').split(',').map(Number);
  const runs: Run[] = [];
  for (const size of sizes) runs.push(await run(size));
  const out: ExportBench = { date: new Date().toISOString(), command: 'npm run bench:export', runs };
  const file = path.join(projectRoot, 'bench', 'export.json');
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
