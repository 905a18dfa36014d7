/**
 * The concerts whose entity runs in this process, each with a way in that skips the cluster's
 * envelope, request tracking and reply for a batch of orders sent from this same process.
 *
 * The cluster still decides where a concert runs: an entity is here only while the cluster
 * keeps it here (it registers when it starts and leaves when it stops), and a sender uses the
 * way in only while this process holds the concert's shard. Everything else (a concert not
 * running here yet, its other messages, other processes' orders) goes through the cluster.
 */
import { Effect, type Exit, type Tracer } from "effect"
import type { ConcertNotFound } from "../domain/Errors.js"
import type { Order, PurchaseOutcome } from "../domain/ConcertEntity.js"

/**
 * Orders handed to a local entity. `done` is called exactly once: with the outcomes in order,
 * a `ConcertNotFound`, or an interruption when the entity stopped before answering (the orders
 * may or may not be written, as for a lost message).
 */
export interface LocalOrders {
  readonly _tag: "LocalOrders"
  readonly orders: ReadonlyArray<Order>
  /** The sender's span, the batch's parent (as a message's span is). */
  readonly span: Tracer.AnySpan | undefined
  readonly done: (exit: Exit.Exit<ReadonlyArray<PurchaseOutcome>, ConcertNotFound>) => void
}

/** A running entity's way in: false once the entity has stopped taking orders. */
export type Door = (orders: LocalOrders) => boolean

export class LocalConcerts extends Effect.Service<LocalConcerts>()("LocalConcerts", {
  sync: () => {
    const doors = new Map<string, Door>()
    return {
      door: (concertId: string): Door | undefined => doors.get(concertId),
      open: (concertId: string, door: Door) => void doors.set(concertId, door),
      /** Only the entity that opened a door closes it (a new one may have started since). */
      close: (concertId: string, door: Door) => {
        if (doors.get(concertId) === door) doors.delete(concertId)
      }
    } as const
  }
}) {}
