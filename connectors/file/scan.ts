/**
 * Finding files: a walk from each include glob's base directory, bounded by the glob's depth.
 * Identity is (device, inode), read with bigint stats so 64-bit inode numbers survive.
 */
import { readdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CompiledGlob, PathFilter } from './glob.js';

export interface FoundFile {
  path: string;
  /** `dev:ino` */
  inode: string;
  dev: string;
  ino: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

export function inodeKey(dev: bigint | string, ino: bigint | string): string {
  return `${dev}:${ino}`;
}

/** Stats a path (following symlinks); null when it is gone or not a regular file. */
export async function statFile(path: string): Promise<FoundFile | null> {
  try {
    const st = await stat(path, { bigint: true });
    if (!st.isFile()) return null;
    return {
      path,
      inode: inodeKey(st.dev, st.ino),
      dev: String(st.dev),
      ino: String(st.ino),
      size: Number(st.size),
      mtimeMs: Number(st.mtimeMs),
      ctimeMs: Number(st.ctimeMs),
    };
  } catch {
    return null;
  }
}

export type WalkProblem = (path: string, err: NodeJS.ErrnoException) => void;

/**
 * Every regular file matching one of the globs and none of the excludes, one per inode (the
 * first path in sorted order when hard links or symlinks give an inode several names).
 */
export async function findFiles(globs: readonly CompiledGlob[], exclude: PathFilter, problem: WalkProblem): Promise<Map<string, FoundFile>> {
  const paths = new Set<string>();
  for (const g of globs) await walk(g.base, g.depth, g.regex, exclude, paths, problem);
  const byInode = new Map<string, FoundFile>();
  for (const path of [...paths].sort()) {
    const f = await statFile(path);
    if (f !== null && !byInode.has(f.inode)) byInode.set(f.inode, f);
  }
  return byInode;
}

async function walk(dir: string, depth: number, regex: RegExp, exclude: PathFilter, out: Set<string>, problem: WalkProblem): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') problem(dir, e);
    return;
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  for (const entry of entries) {
    const path = prefix + entry.name;
    if (entry.isDirectory()) {
      if (depth > 1) await walk(path, depth - 1, regex, exclude, out, problem);
    } else if ((entry.isFile() || entry.isSymbolicLink()) && regex.test(path) && !exclude.matches(path)) {
      out.add(path);
    }
  }
}

/**
 * Where an inode went: the file in `near`'s directory with this (dev, ino), if any. Rotation
 * renames within a directory, so this finds a file rotated while its handle was closed (or while
 * sluice was not running), even when the new name matches no include glob.
 */
export async function findInode(near: string, inode: string, limit = 10_000): Promise<FoundFile | null> {
  const dir = dirname(near);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return null;
  }
  for (const name of names.slice(0, limit)) {
    const f = await statFile(`${dir}/${name}`);
    if (f !== null && f.inode === inode) return f;
  }
  return null;
}
