/**
 * Workgroup grids for 1-D problems. A device allows at most maxComputeWorkgroupsPerDimension
 * workgroups per dimension (65535 on every WebGPU device so far; read from the runtime's policy),
 * so a long grid folds into 2-D; shaders rebuild the flat index as gid.x + gid.y * nwg.x * perGroup
 * (folded_index() in shaders/include/grid.wgsl).
 */
import type { PolicySource } from './policy.ts';

/** Fold `groups` workgroups into [x, y] with x <= the device's limit. Zero groups dispatch nothing. */
export function grid1d(rt: PolicySource, groups: number): [number, number] {
  if (groups === 0) return [0, 1];
  const gx = Math.min(groups, rt.policy.limits.maxComputeWorkgroupsPerDimension);
  return [gx, Math.ceil(groups / gx)];
}

/** The folded grid for `items` items at `perGroup` items per workgroup. */
export function foldedGrid(rt: PolicySource, items: number, perGroup: number): [number, number] {
  return grid1d(rt, Math.ceil(items / perGroup));
}
