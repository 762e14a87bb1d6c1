import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A file the dashboard serves, read once, with a version for long-lived caching. */
export interface Asset {
  body: Buffer;
  type: string;
  version: string;
}

/**
 * The stylesheet and the script, from `assets/dashboard/` of the package: the same relative
 * place from `src/dashboard/` and from `dist/dashboard/`, and shipped in the package's files.
 */
export function loadAssets(): Record<'css' | 'js', Asset> {
  const read = (file: string, type: string): Asset => {
    const body = readFileSync(new URL(`../../assets/dashboard/${file}`, import.meta.url));
    return { body, type, version: createHash('sha256').update(body).digest('hex').slice(0, 12) };
  };
  return {
    css: read('dashboard.css', 'text/css; charset=utf-8'),
    js: read('dashboard.js', 'text/javascript; charset=utf-8'),
  };
}
