/**
 * What the render workers are asked to do. Requests cross a thread boundary, so each is a
 * schema; the seating plan comes back gzipped (a 150,000-seat plan is ~8 MB of SVG).
 */
import { Schema } from "effect"

export class RenderFailed extends Schema.TaggedError<RenderFailed>()("RenderFailed", {
  message: Schema.String
}) {}

/** What a printed ticket shows. */
export const TicketDetails = Schema.Struct({
  ticketId: Schema.String,
  concert: Schema.Struct({ id: Schema.String, name: Schema.String, date: Schema.String, venue: Schema.String }),
  user: Schema.Struct({ name: Schema.String, email: Schema.String })
})
export type TicketDetails = typeof TicketDetails.Type

/**
 * Seat numbers, packed. As a schema's array of integers, a selling concert's sold seats (tens of
 * thousands, redrawn every few seconds) were checked one by one as the request was made, again
 * as it was encoded for the render thread, and decoded one by one from the database before
 * that: work and garbage on the main thread, where purchases are answered.
 */
export const Seats = Schema.declare((u: unknown): u is Int32Array => u instanceof Int32Array, { identifier: "Seats" })

/** What a seating plan shows. */
export const SeatingDetails = Schema.Struct({
  concertId: Schema.String,
  name: Schema.String,
  venue: Schema.String,
  capacity: Schema.Int,
  purchased: Schema.Int,
  /** The sold seats' numbers; without them, seats `1..purchased` are the sold ones. */
  sold: Schema.optionalWith(Seats, { exact: true }),
  /** The seats live reservations hold, drawn apart from sold ones. */
  held: Schema.optionalWith(Seats, { exact: true })
})
export type SeatingDetails = typeof SeatingDetails.Type

export class RenderTicket extends Schema.TaggedRequest<RenderTicket>()("RenderTicket", {
  failure: RenderFailed,
  success: Schema.String,
  payload: TicketDetails.fields
}) {}

export class RenderSeating extends Schema.TaggedRequest<RenderSeating>()("RenderSeating", {
  failure: RenderFailed,
  success: Schema.Uint8ArrayFromSelf,
  payload: SeatingDetails.fields
}) {}

export const RenderRequest = Schema.Union(RenderTicket, RenderSeating)
export type RenderRequest = typeof RenderRequest.Type
