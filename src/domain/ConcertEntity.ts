import { Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Concert, UpdateConcert } from "./Concert.js"
import { ConcertCancelled, ConcertNotFound, IdempotencyKeyReused, SoldOut } from "./Errors.js"
import { TicketId, UserId } from "./Ids.js"
import { TicketRecord } from "./Ticket.js"

/*
 * The concert entity's protocol. The entity type, the RPC tags and the error tags are wire
 * format: runners of different builds must agree on them, so they are not renamed casually.
 * The refusals a buyer sees are the API's own errors (`Errors.ts`), passed on as they are.
 */

/** The journal could not be written; nothing was sold, the caller may retry. */
export class JournalUnavailable extends Schema.TaggedError<JournalUnavailable>()("JournalUnavailable", {
  reason: Schema.String
}) {}

/**
 * One buyer's order. A retry is made safe by the ticket id (and the idempotency key). An order
 * with a `deadline` (epoch milliseconds) is never journaled after it: its buyer has been told
 * 503 by then, and a retry without a key must not find a second ticket bought.
 */
export const PurchaseOrder = Schema.Struct({
  ticketId: TicketId,
  userId: UserId,
  idempotencyKey: Schema.optionalWith(Schema.String, { exact: true }),
  deadline: Schema.optionalWith(Schema.Number, { exact: true })
})
export type PurchaseOrder = typeof PurchaseOrder.Type

/** What one order got: its ticket, or why not. */
export const PurchaseOutcome = Schema.Union(TicketRecord, SoldOut, ConcertCancelled, IdempotencyKeyReused, JournalUnavailable)
export type PurchaseOutcome = typeof PurchaseOutcome.Type

/**
 * Buy one seat for each order, answered in order. A process sends the orders of all its
 * buyers waiting on one concert as one message: the per-message cost of the cluster is paid
 * per batch, not per buyer. Volatile: orders are idempotent through their unique keys.
 */
export const Purchases = Rpc.make("Purchases", {
  payload: { orders: Schema.NonEmptyArray(PurchaseOrder) },
  success: Schema.Array(PurchaseOutcome),
  error: ConcertNotFound
})

/** Change name, venue, date or status; serialised with purchases so status and sales agree. */
export const Update = Rpc.make("Update", {
  payload: UpdateConcert,
  success: Concert,
  error: Schema.Union(ConcertNotFound, JournalUnavailable)
})

export const ConcertEntity = Entity.make("Concert", [Purchases, Update])
