/**
 * Workgroup grids for 1-D problems. WebGPU allows at most 65535 workgroups per dimension, so a
 * long grid folds into 2-D; shaders rebuild the flat index as gid.x + gid.y * nwg.x * perGroup.
 */

/** Fold `groups` workgroups into [x, y] with x <= 65535. Zero groups dispatch nothing. */
export function grid1d(groups: number): [number, number] {
  if (groups === 0) return [0, 1];
  const gx = Math.min(groups, 65535);
  return [gx, Math.ceil(groups / gx)];
}

/** The folded grid for `items` items at `perGroup` items per workgroup. */
export function foldedGrid(items: number, perGroup: number): [number, number] {
  return grid1d(Math.ceil(items / perGroup));
}
