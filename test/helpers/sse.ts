import http from 'node:http';

export type SseEvent = { id?: string; event?: string; data: string };

export type SseClient = {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: SseEvent[];
  comments: string[];
  /** Resolves when at least `count` events arrived; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
  closed: Promise<void>;
};

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

/**
 * A minimal server-sent-events client over node:http (EventSource parsing
 * rules). A stream URL without `types=` asks for notifications only
 * (`?types=notification`): the tests written before the live conversation
 * events count notification events; the tests of those events name the
 * types they want.
 */
export function openStream(rawUrl: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const parsed = new URL(rawUrl);
  if (parsed.pathname.endsWith('/notifications/stream') && !parsed.searchParams.has('types')) parsed.searchParams.set('types', 'notification');
  const url = parsed.toString();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const waiters: { count: number; resolve: (e: SseEvent[]) => void }[] = [];
      let buffer = '';
      let closedResolve!: () => void;
      const closed = new Promise<void>((r) => (closedResolve = r));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: SseEvent = { data: '' };
          let hasData = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) {
              event.data += (hasData ? '\n' : '') + line.slice(6);
              hasData = true;
            }
          }
          if (hasData) events.push(event);
        }
        for (const w of [...waiters]) {
          if (events.length >= w.count) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(events.slice());
          }
        }
      });
      res.on('close', () => closedResolve());
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        comments,
        closed,
        waitFor(count, timeoutMs = 5000) {
          if (events.length >= count) return Promise.resolve(events.slice());
          return new Promise((resolveWait, rejectWait) => {
            const timer = setTimeout(
              () => rejectWait(new Error(`only ${events.length} of ${count} events after ${timeoutMs} ms`)),
              timeoutMs,
            );
            waiters.push({ count, resolve: (e) => { clearTimeout(timer); resolveWait(e); } });
          });
        },
        close() {
          req.destroy();
        },
      });
    });
    req.on('error', reject);
  });
}
