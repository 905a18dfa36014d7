import { Entity } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { Schema } from "effect"
import { Concert, UpdateConcert } from "./Concert.js"
import { TicketId, UserId } from "./Ids.js"
import { TicketRecord } from "./Ticket.js"

/*
 * The concert entity's protocol. The entity type, the RPC tags and the error tags are wire
 * format: runners of different builds must agree on them, so they are not renamed casually.
 */

export class ConcertNotFound extends Schema.TaggedError<ConcertNotFound>()("ConcertNotFound", {
  concertId: Schema.String
}) {}

export class SoldOut extends Schema.TaggedError<SoldOut>()("SoldOut", {
  concertId: Schema.String
}) {}

export class ConcertCancelled extends Schema.TaggedError<ConcertCancelled>()("ConcertCancelled", {
  concertId: Schema.String
}) {}

/** The same `Idempotency-Key` was already used to buy a ticket with a different body. */
export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>()("IdempotencyKeyReused", {
  idempotencyKey: Schema.String
}) {}

/** The journal could not be written; nothing was sold, the caller may retry. */
export class JournalUnavailable extends Schema.TaggedError<JournalUnavailable>()("JournalUnavailable", {
  reason: Schema.String
}) {}

/**
 * Buy one seat. Volatile: a retry is made safe by the ticket id (and the idempotency key, when
 * the client sent one), both unique in the journal.
 */
export const Purchase = Rpc.make("Purchase", {
  payload: Schema.Struct({
    ticketId: TicketId,
    userId: UserId,
    idempotencyKey: Schema.optionalWith(Schema.String, { exact: true })
  }),
  success: TicketRecord,
  error: Schema.Union(ConcertNotFound, SoldOut, ConcertCancelled, IdempotencyKeyReused, JournalUnavailable)
})

/** Change name, venue, date or status; serialised with purchases so status and sales agree. */
export const Update = Rpc.make("Update", {
  payload: UpdateConcert,
  success: Concert,
  error: Schema.Union(ConcertNotFound, JournalUnavailable)
})

export const ConcertEntity = Entity.make("Concert", [Purchase, Update])
