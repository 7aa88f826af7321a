import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import { publicFolder } from '../paths';

/**
 * The web client: helmet's security headers on the page, the assets cached
 * for a year as immutable under /assets/<hash>/ (a hash of every asset file,
 * computed once at start: the ES modules import each other by relative
 * URL, so the whole set moves to a new path when any file changes), and the
 * HTML at / never cached, so a deploy is picked up on the next load.
 */
async function webPlugin(app: FastifyInstance): Promise<void> {
  // Helmet runs only where a browser renders what we send (the page). Its
  // Fastify plugin rebuilds the whole helmet middleware on every request
  // (directive parsing included): a measurable share of an API request's CPU
  // for headers that mean nothing on JSON. Every response still gets nosniff.
  await app.register(helmet, {
    global: false,
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
      },
    },
    // The API answers JSON to any origin that holds a token; the UI is same-origin.
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });

  const assets = path.join(publicFolder, 'assets');
  const digest = crypto.createHash('sha256');
  for (const file of fs.readdirSync(assets).sort()) digest.update(file).update(fs.readFileSync(path.join(assets, file)));
  const prefix = `/assets/${digest.digest('hex').slice(0, 12)}/`;
  const html = fs
    .readFileSync(path.join(publicFolder, 'index.html'), 'utf8')
    .replace('{{app.js}}', `${prefix}app.js`)
    .replace('{{style.css}}', `${prefix}style.css`);

  await app.register(fastifyStatic, {
    root: assets,
    prefix,
    immutable: true,
    maxAge: '365d',
    index: false,
  });

  app.addHook('onSend', async (_request, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
  });

  app.get('/', { schema: { hide: true }, helmet: {} }, async (_request, reply) =>
    reply.header('Cache-Control', 'no-cache, no-store, must-revalidate').type('text/html; charset=utf-8').send(html),
  );
}

export default fp(webPlugin, { name: 'web', fastify: '5.x' });
