/** Harness/package version recorded in run manifests and dataset cards. */
export const VERSION = '0.1.0';
