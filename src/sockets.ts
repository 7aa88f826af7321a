import http from 'node:http';
import type { Server, Socket } from 'node:net';

/**
 * The HTTP layer's own errors, before any route runs (a request Node's
 * parser refuses: a smuggling attempt, headers over 16 KB, a request not
 * received within REQUEST_TIMEOUT_MS) in the API's error shape, with a
 * `code` like every other error. Fastify's default wrote a body without
 * one.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', 'the request was not received in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'HEADERS_TOO_LARGE', 'the request headers are too large']
        : [400, 'MALFORMED_REQUEST', 'the request is not valid HTTP/1.1'];
  const reason = http.STATUS_CODES[status] ?? 'Error';
  const body = JSON.stringify({ statusCode: status, error: reason, message, code });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * At most `perAddress` open connections from one peer address (0: no
 * limit); one more is closed at once. Behind a proxy every client shares
 * the proxy's address: raise it, or set 0 and let the proxy limit.
 */
export function capConnectionsPerAddress(server: Server, perAddress: number): void {
  if (perAddress <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (open.get(address) ?? 0) + 1;
    if (count > perAddress) {
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}
