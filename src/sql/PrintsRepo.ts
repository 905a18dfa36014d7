import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Effect, Option, Schema } from "effect"
import { TicketId } from "../domain/Ids.js"
import { withSpan } from "../Spans.js"

/** What a print job needs, read when the job runs so it shows the concert as it is now. */
export const PrintJobInput = Schema.Struct({
  ticketId: Schema.String,
  userId: Schema.String,
  printStatus: Schema.String,
  concertId: Schema.String,
  name: Schema.String,
  venue: Schema.String,
  date: Schema.String,
  version: Schema.Int
})
export type PrintJobInput = typeof PrintJobInput.Type

/** A PENDING ticket to print and how soon its concert is (the queue's priority). */
const PrintedSvg = Schema.Struct({ svg: Schema.String })

export const PendingTicket = Schema.Struct({
  ticketId: Schema.String,
  concertId: Schema.String,
  date: Schema.String
})
export type PendingTicket = typeof PendingTicket.Type

export class PrintsRepo extends Effect.Service<PrintsRepo>()("PrintsRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const input = SqlSchema.findOne({
      Request: Schema.String,
      Result: PrintJobInput,
      execute: (id) =>
        sql`SELECT t.id AS "ticketId", t.user_id AS "userId", t.print_status AS "printStatus",
                   c.id AS "concertId", c.name, c.venue, c.date, c.version
            FROM tickets t JOIN concerts c ON c.id = t.concert_id WHERE t.id = ${id}`
    })

    /** NOT_PRINTED, PRINTED or ERROR become PENDING (PENDING stays); None when there is no such ticket. */
    const requestPrint = SqlSchema.findOne({
      Request: Schema.String,
      Result: PendingTicket,
      execute: (id) =>
        sql`UPDATE tickets t SET print_status = 'PENDING' FROM concerts c
            WHERE t.id = ${id} AND c.id = t.concert_id
            RETURNING t.id AS "ticketId", c.id AS "concertId", c.date`
    })

    const pending = SqlSchema.findAll({
      Request: Schema.Void,
      Result: PendingTicket,
      execute: () =>
        sql`SELECT t.id AS "ticketId", c.id AS "concertId", c.date
            FROM tickets t JOIN concerts c ON c.id = t.concert_id
            WHERE t.print_status = 'PENDING' ORDER BY c.date`
    })

    /**
     * Stores a rendered ticket if the concert is still at `version` and the ticket still
     * PENDING; false when either changed meanwhile (the render is stale and must not land).
     */
    const store = (ticketId: string, concertId: string, version: number, svg: string) =>
      sql.withTransaction(Effect.gen(function*() {
        const current = yield* sql`SELECT 1 FROM concerts WHERE id = ${concertId} AND version = ${version} FOR SHARE`
        if (current.length === 0) return false
        const printed = yield* sql`UPDATE tickets SET print_status = 'PRINTED'
                                   WHERE id = ${ticketId} AND print_status = 'PENDING' RETURNING id`
        if (printed.length === 0) return false
        yield* sql`INSERT INTO ticket_prints (ticket_id, concert_version, svg) VALUES (${ticketId}, ${version}, ${svg})
                   ON CONFLICT (ticket_id) DO UPDATE
                   SET concert_version = EXCLUDED.concert_version, svg = EXCLUDED.svg, printed_at = now()`
        return true
      }))

    const markError = (ticketId: string) =>
      sql`UPDATE tickets SET print_status = 'ERROR' WHERE id = ${ticketId} AND print_status = 'PENDING'`

    /** The SVG of a PRINTED ticket, only if it shows the concert's current version. */
    const printed = SqlSchema.findOne({
      Request: TicketId,
      Result: PrintedSvg,
      execute: (ticketId) =>
        sql`SELECT p.svg FROM ticket_prints p
            JOIN tickets t ON t.id = p.ticket_id AND t.print_status = 'PRINTED'
            JOIN concerts c ON c.id = t.concert_id AND c.version = p.concert_version
            WHERE p.ticket_id = ${ticketId}`
    })

    const span = (name: string) => withSpan(`PrintsRepo.${name}`, { captureStackTrace: false })
    return {
      input: (ticketId: string) => input(ticketId).pipe(Effect.orDie, span("input")),
      requestPrint: (ticketId: TicketId) => requestPrint(ticketId).pipe(Effect.orDie, span("requestPrint")),
      pending: pending().pipe(Effect.orDie, span("pending")),
      store: (ticketId: string, concertId: string, version: number, svg: string) =>
        store(ticketId, concertId, version, svg).pipe(Effect.orDie, span("store")),
      markError: (ticketId: string) => markError(ticketId).pipe(Effect.asVoid, Effect.orDie, span("markError")),
      printed: (ticketId: TicketId) => printed(ticketId).pipe(Effect.map(Option.map((row) => row.svg)), Effect.orDie, span("printed"))
    } as const
  })
}) {}
