export { TroupeError, isTroupeError, type TroupeErrorCode } from "./shared/errors.js";
