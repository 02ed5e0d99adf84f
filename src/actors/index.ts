/**
 * Actor logic that does IO (DESIGN §2): git worktrees and the pty host.
 */
export {
  gitTopLevel,
  gitCommonDir,
  resolveRef,
  countCommitsAhead,
  addWorktree,
  removeWorktree,
  isWorktreeDirty,
  worktreeChanges,
  listWorktrees,
  listBranches,
  deleteBranch,
  type WorktreeInfo,
  type AddWorktreeOptions,
  type AddedWorktree,
  type RemoveWorktreeOptions,
} from "./worktree.js";
export { launchPtyHost, ptyHostMainPath, SpareHost, type HostStarted, type LaunchOptions } from "./pty-host/launch.js";
export { connectPtyHost, PtyHostClient, type ConnectOptions, type PtyHostClientEvents } from "./pty-host/client.js";
export {
  PROTOCOL_VERSION,
  MAX_FRAME_BYTES,
  DEFAULT_SCROLLBACK_BYTES,
  MAX_SCROLLBACK_BYTES,
  DEFAULT_COLLECT_TIMEOUT_MS,
  type PtyHostSpec,
  type ExitStatus,
  type HostIdentity,
  type HostStatus,
  type PtyErrorInfo,
  type ClientFrame,
  type HostFrame,
  type ReadyMessage,
} from "./pty-host/protocol.js";
