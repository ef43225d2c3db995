/** Public API of the task layer: families, graders, solvers, generators, loader and Python semantics. */
export * from './types.js';
export * from './registry.js';
export * from './loader.js';
export * from './taskset.js';
export {
  GRADER_VERSION,
  NOW_ISO,
  POST_ACCEPTED_MARK,
  checkHasPost,
  extractPosts,
  extractPostsDetailed,
  sendGetRequest,
  getJsonData,
  labUrl,
  scanLatest,
  scanMean,
  reportValue,
  runGrader,
  Grading,
} from './refsol.js';
export { gradeOutput } from './grade.js';
export type { ExtractedPost, SkippedPost, GetResponse, LatestScan, MeanScan } from './refsol.js';
export {
  SOLVER_VERSION,
  SolverError,
  GET_REPLY_PREFIX,
  GET_REPLY_SUFFIX,
  POST_ACCEPTED_REPLY,
} from './common.js';
export { pyJsonLoads, pyJsonDumps, pyEquals, pyIn, pyFromIsoFormat, pyFloatRepr, PyException, PyFloat, PyDateTime } from './pysem.js';
