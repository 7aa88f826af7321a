declare module 'abstract-cache' {
  type Options = {
    useAwait?: boolean;
    client?: unknown;
    driver?: { name?: string; options?: Record<string, unknown> };
  };
  function abstractCache(options?: Options): unknown;
  export = abstractCache;
}
