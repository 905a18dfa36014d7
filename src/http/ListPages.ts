/**
 * Long lists (every ticket, every concert) are read a page at a time, and each page costs the
 * event loop: rows parsed, JSON written. Pages of all lists of this process are produced one
 * at a time, so however many clients loop over lists, lists take about one page's worth of
 * the event loop at a time and buyers get the rest. A client that reads slowly holds nothing:
 * the gate is held while a page is made, not while it is sent.
 */
import { Effect } from "effect"

export class ListPages extends Effect.Service<ListPages>()("ListPages", {
  effect: Effect.gen(function*() {
    const gate = yield* Effect.makeSemaphore(1)
    return {
      one: <A, E, R>(page: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => gate.withPermits(1)(page)
    } as const
  })
}) {}
