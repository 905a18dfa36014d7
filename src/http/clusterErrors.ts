import { Effect } from "effect"
import { Busy } from "../domain/Errors.js"

/**
 * The cluster's own delivery failures, as a retryable 503: a full concert mailbox (a burst
 * beyond what the entity queues), or a message the cluster could not hand over.
 */
export const clusterUnavailable = {
  MailboxFull: () => Effect.fail(new Busy({ message: "too many requests for this concert; retry shortly" })),
  AlreadyProcessingMessage: () => Effect.fail(new Busy({ message: "the request is already being processed; retry" })),
  PersistenceError: () => Effect.fail(new Busy({ message: "the cluster could not accept the request; retry" }))
} as const
