/**
 * Long lists (every ticket, every concert) are read a page at a time, and each page costs the
 * event loop: rows parsed, JSON written. Pages of all lists of an organiser are produced one
 * at a time, so however many clients loop over its lists, they take about one page's worth of
 * the event loop at a time and buyers get the rest. A client that reads slowly holds nothing:
 * the gate is held while a page is made, not while it is sent.
 */
import { Effect } from "effect"
import { perOrganiser } from "./perOrganiser.js"

export class ListPages extends Effect.Service<ListPages>()("ListPages", {
  effect: Effect.sync(() => {
    // One gate per organiser: an organiser whose database is slow holds up its own lists only.
    const gate = perOrganiser(1)
    return {
      one: <A, E, R>(page: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => gate(page)
    } as const
  })
}) {}
