import { Data } from "effect"

/**
 * Why the service could not start, in one line that says what to do: `main.ts` logs it as the
 * last line and exits non-zero, instead of a stack trace.
 */
export class StartupFailure extends Data.TaggedError("StartupFailure")<{ readonly message: string }> {}
