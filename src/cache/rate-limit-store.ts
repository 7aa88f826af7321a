import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
// @fastify/rate-limit's own stores (no "exports" map: deep imports resolve).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const LocalStore = require('@fastify/rate-limit/store/LocalStore') as StoreClass;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const RedisStore = require('@fastify/rate-limit/store/RedisStore') as StoreClass;

type Result = { current: number; ttl: number };
type Callback = (error: Error | null, result: Result | null) => void;
type Store = {
  incr(key: string, cb: Callback, timeWindow: number, max: number): void;
  read?(key: string, cb: Callback, timeWindow: number, max: number): void;
  child(routeOptions: RouteOptions): Store;
};
type RouteOptions = { continueExceeding: boolean; exponentialBackoff: boolean; routeInfo: { method: string; url: string } };
type StoreClass = new (...args: unknown[]) => Store;

/**
 * The rate limits' counters in Redis (shared by every instance), and in
 * this process's memory whenever Redis fails a call: limits keep working
 * while Redis is away, each instance counting alone (so a client spread
 * over N instances gets up to N times the budget until Redis is back),
 * instead of switching off — 530 guesses in 10 s against a budget of 10
 * per minute, before. Pass the returned class as @fastify/rate-limit's
 * `store`.
 */
export function redisWithLocalFallback(redis: Redis, nameSpace: string, onFallback: (error: Error) => void): FastifyRateLimitStoreCtor {
  class Fallback implements Store {
    constructor(
      private readonly shared: Store,
      private readonly local: Store,
    ) {}
    incr(key: string, cb: Callback, timeWindow: number, max: number): void {
      this.shared.incr(key, (error, result) => {
        if (!error) return cb(null, result);
        onFallback(error);
        this.local.incr(key, cb, timeWindow, max);
      }, timeWindow, max);
    }
    read(key: string, cb: Callback, timeWindow: number, max: number): void {
      this.shared.read!(key, (error, result) => {
        if (!error) return cb(null, result);
        onFallback(error);
        this.local.read!(key, cb, timeWindow, max);
      }, timeWindow, max);
    }
    child(routeOptions: RouteOptions): Store {
      return new Fallback(this.shared.child(routeOptions), this.local.child(routeOptions));
    }
  }
  return class extends Fallback {
    constructor(params: { continueExceeding: boolean; exponentialBackoff: boolean }) {
      super(
        new RedisStore(params.continueExceeding, params.exponentialBackoff, redis, nameSpace),
        new LocalStore(params.continueExceeding, params.exponentialBackoff),
      );
    }
  } as unknown as FastifyRateLimitStoreCtor;
}
