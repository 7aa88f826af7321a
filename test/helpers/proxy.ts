import net from 'node:net';
import type { Test } from 'tap';

export type TcpProxy = {
  port: number;
  /** Stops accepting and destroys every open socket at once: the peers see their connections drop without a word. */
  cut(): Promise<void>;
  /** Accepts again, on the same port. */
  restore(): Promise<void>;
  /**
   * Stops forwarding on every open connection without closing any: a
   * half-open connection (a NAT that forgot it, a partition). New
   * connections are forwarded as before.
   */
  stall(): void;
};

/** A TCP proxy on 127.0.0.1 in front of `targetPort` that a test can cut and restore; cut at teardown. */
export async function tcpProxy(t: Test, targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  let server: net.Server;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect(targetPort, targetHost);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        const pair: [net.Socket, net.Socket] = [client, upstream];
        pairs.add(pair);
        client.on('close', () => pairs.delete(pair));
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  await listen();
  const cut = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      sockets.forEach((s) => s.destroy());
    });
  };
  const stall = () => {
    for (const [client, upstream] of pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    pairs.clear();
  };
  t.teardown(cut);
  return { port, cut, restore: listen, stall };
}
