/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the share of CPU time
 * spent in each package (self time: the function on top of the stack) and
 * the top functions. "signalbox" is this project's own code, "node" is
 * Node's internals and builtins, "(gc)" and "(program)" are V8's.
 */
import fs from 'node:fs';

type ProfileNode = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] };
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

export type ProfileSummary = {
  /** CPU time sampled, ms, excluding (idle). */
  busyMs: number;
  packages: { name: string; share: number }[];
  functions: { name: string; where: string; share: number }[];
};

export function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : 'node';
  if (url.startsWith('node:')) return 'node';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  return 'signalbox';
}

export function summariseProfile(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const packages = new Map<string, number>();
  const functions = new Map<string, { where: string; us: number }>();
  let busy = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busy += us;
    const pkg = packageOf(url, functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
    const name = functionName || '(anonymous)';
    const where = url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '')}:${lineNumber + 1}` : pkg;
    const key = `${name} ${where}`;
    const f = functions.get(key) ?? { where, us: 0 };
    f.us += us;
    functions.set(key, f);
  }
  const share = (us: number) => Math.round((1000 * us) / busy) / 10;
  return {
    busyMs: Math.round(busy / 1000),
    packages: [...packages].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, share: share(us) })),
    functions: [...functions]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([key, f]) => ({ name: key.slice(0, key.length - f.where.length - 1), where: f.where, share: share(f.us) })),
  };
}
