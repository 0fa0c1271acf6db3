/**
 * The exit codes of train.js, one table for `--plan` and training alike (docs/RELIABILITY.md "Exit codes").
 * Scripts and schedulers branch on them, so each outcome has exactly one code. The table itself
 * lives with the one error boundary of every command, src/util/cli-errors.ts (0 done, 1 stopped,
 * 2 bad input, 3 diverged, 70 a bug, 129 SIGHUP, 130 SIGINT, 131 SIGQUIT, 143 SIGTERM); this re-export keeps train's imports.
 */
export { EXIT } from '../util/cli-errors.ts';
