import fs from 'node:fs';
import path from 'node:path';

/**
 * The repository root, found by walking up to package.json, so the same code
 * works from src/ (tests run TypeScript directly) and from dist/src/.
 */
function findProjectRoot(start: string): string {
  let dir = start;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const projectRoot = findProjectRoot(__dirname);
export const migrationsFolder = path.join(projectRoot, 'migrations');
export const publicFolder = path.join(projectRoot, 'public');
