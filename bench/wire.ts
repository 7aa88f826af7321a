/**
 * A recording TCP proxy in front of PostgreSQL, for the ceiling benchmark:
 * the server under test connects through it, and it reads the statements
 * the server actually sends off the wire (frontend protocol: simple Query,
 * and Parse + Bind of the extended protocol with their parameter values).
 * That is how the ceiling is "the API's exact statements": not a copy in
 * the benchmark that could drift from the code, but what went over the
 * socket, whichever version of the app is measured.
 */
import net from 'node:net';

/** One statement as sent: its text and, for the extended protocol, its parameters (null = SQL NULL). */
export type WireStatement = { connection: number; text: string; params: (string | Buffer | null)[] };

export type Recorder = {
  port: number;
  /** Statements recorded since the last take(), oldest first. */
  take(): WireStatement[];
  close(): Promise<void>;
};

/** Parses one connection's frontend byte stream, message by message. */
function frontendParser(connection: number, emit: (s: WireStatement) => void): (chunk: Buffer) => void {
  let buffer = Buffer.alloc(0);
  let startup = true;
  let parsed: string | null = null;
  const cstring = (b: Buffer, at: number): [string, number] => {
    const end = b.indexOf(0, at);
    return [b.toString('utf8', at, end), end + 1];
  };
  return (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (startup) {
        // The startup message (and an SSLRequest) has no type byte.
        if (buffer.length < 4) return;
        const length = buffer.readInt32BE(0);
        if (buffer.length < length) return;
        const code = buffer.readInt32BE(4);
        buffer = buffer.subarray(length);
        if (code !== 80877103) startup = false; // 80877103: SSLRequest, a startup message follows
        continue;
      }
      if (buffer.length < 5) return;
      const type = String.fromCharCode(buffer[0]!);
      const length = buffer.readInt32BE(1);
      if (buffer.length < 1 + length) return;
      const body = buffer.subarray(5, 1 + length);
      buffer = buffer.subarray(1 + length);
      if (type === 'Q') emit({ connection, text: cstring(body, 0)[0], params: [] });
      else if (type === 'P') {
        const [, at] = cstring(body, 0); // statement name
        parsed = cstring(body, at)[0];
      } else if (type === 'B') {
        let [, at] = cstring(body, 0); // portal
        [, at] = cstring(body, at); // statement
        const formatCount = body.readInt16BE(at);
        const formats: number[] = [];
        for (let i = 0; i < formatCount; i++) formats.push(body.readInt16BE(at + 2 + 2 * i));
        at += 2 + 2 * formatCount;
        const count = body.readInt16BE(at);
        at += 2;
        const params: (string | Buffer | null)[] = [];
        for (let i = 0; i < count; i++) {
          const size = body.readInt32BE(at);
          at += 4;
          if (size < 0) {
            params.push(null);
            continue;
          }
          const raw = body.subarray(at, at + size);
          at += size;
          const binary = (formatCount === 1 ? formats[0] : formats[i]) === 1;
          params.push(binary ? Buffer.from(raw) : raw.toString('utf8'));
        }
        emit({ connection, text: parsed ?? '', params });
      }
    }
  };
}

export async function startRecorder(target: { host: string; port: number }): Promise<Recorder> {
  let recorded: WireStatement[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const parse = frontendParser(++connections, (s) => recorded.push(s));
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      parse(chunk);
      upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    take() {
      const out = recorded;
      recorded = [];
      return out;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A SQL literal for a parameter value, as PostgreSQL would read the parameter. */
function literal(value: string | Buffer | null): string {
  if (value === null) return 'NULL';
  const text = typeof value === 'string' ? value : `\\x${value.toString('hex')}`;
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * pgbench reads `:name` anywhere in a command as a variable, even inside a
 * string literal ('HH24:MI:SS' of to_char): such a literal is rewritten as
 * the same string in escape syntax, with the colon as \x3a.
 */
function hideColons(sql: string): string {
  return sql.replace(/(?<![A-Za-z0-9_])'((?:[^']|'')*)'/g, (whole, body: string) =>
    /:[A-Za-z0-9_]/.test(body) ? `E'${body.replace(/\\/g, '\\\\').replace(/:/g, '\\x3a')}'` : whole,
  );
}

/**
 * The statements as a pgbench script: parameters written in as literals
 * (pgbench cannot bind strings), one statement per command.
 */
export function pgbenchScript(statements: readonly WireStatement[]): string {
  return statements
    .map((s) => {
      // Colons hidden after the parameters are written in: a parameter's
      // text ('host:pid:…', JSON) is a literal like any other.
      const text = hideColons(s.text.replace(/\$(\d+)/g, (_, n: string) => literal(s.params[Number(n) - 1] ?? null)))
        .trim()
        .replace(/;$/, '');
      if (/;\s*\n/.test(text)) throw new Error(`a statement pgbench would split: ${text.slice(0, 80)}`);
      return `${text};`;
    })
    .join('\n');
}
