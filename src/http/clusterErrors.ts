import { Effect } from "effect"
import { Busy } from "../domain/Errors.js"

/**
 * The cluster's own delivery failures, as a retryable 503: a full concert mailbox (a burst
 * beyond what the entity queues), or a message the cluster could not hand over.
 */
export const clusterBusy = {
  MailboxFull: new Busy({ message: "too many requests for this concert; retry shortly" }),
  AlreadyProcessingMessage: new Busy({ message: "the request is already being processed; retry" }),
  PersistenceError: new Busy({ message: "the cluster could not accept the request; retry" })
} as const

export const clusterUnavailable = {
  MailboxFull: () => Effect.fail(clusterBusy.MailboxFull),
  AlreadyProcessingMessage: () => Effect.fail(clusterBusy.AlreadyProcessingMessage),
  PersistenceError: () => Effect.fail(clusterBusy.PersistenceError)
} as const
