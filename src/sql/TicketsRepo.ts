import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Effect, identity, Schema } from "effect"
import { keysetPages, type PageGate } from "./pages.js"
import { ConcertId, TicketId, UserId } from "../domain/Ids.js"
import { TicketRecord, type TicketRow } from "../domain/Ticket.js"
import { withSpan } from "../Spans.js"

/** The select list that reads a `tickets` row as a `TicketRecord`. */
export const ticketColumns =
  `id, concert_id AS "concertId", user_id AS "userId", seat_no AS seat, print_status AS "printStatus"`

const Filter = Schema.Struct({
  userId: Schema.optionalWith(UserId, { exact: true }),
  concertId: Schema.optionalWith(ConcertId, { exact: true })
})
type Filter = typeof Filter.Type

interface Page extends Filter {
  readonly size: number
  readonly after?: { readonly concertId: ConcertId; readonly seat: number }
}

export class TicketsRepo extends Effect.Service<TicketsRepo>()("TicketsRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const select = sql.literal(ticketColumns)

    const findById = SqlSchema.findOne({
      Request: TicketId,
      Result: TicketRecord,
      execute: (id) => sql`SELECT ${select} FROM tickets WHERE id = ${id}`
    })

    /**
     * One page of a list, in (concert, seat) order, after `after` (keyset: constant cost a
     * page). Rows are read without a schema decode: the columns' types and constraints fix
     * their shape, and decoding 51,000 rows held the event loop for about a second.
     */
    const page = ({ after, concertId, size, userId }: Page) => {
      const where = sql.and([
        ...(concertId === undefined ? [] : [sql`concert_id = ${concertId}`]),
        ...(userId === undefined ? [] : [sql`user_id = ${userId}`]),
        ...(after === undefined ? [] : [sql`(concert_id, seat_no) > (${after.concertId}, ${after.seat})`])
      ])
      return sql<TicketRow & { readonly seat: number }>`
        SELECT ${select} FROM tickets WHERE ${where} ORDER BY concert_id, seat_no LIMIT ${size}`
    }

    return {
      findById: (id: TicketId) =>
        findById(id).pipe(Effect.orDie, withSpan("TicketsRepo.findById", { captureStackTrace: false, attributes: { id } })),
      /**
       * Every ticket matching the filter, page by page (`keysetPages`); `each` wraps the
       * reading of every page.
       */
      list: (filter: Filter, size: number, each: PageGate = identity) =>
        keysetPages<TicketRow & { readonly seat: number }, Page["after"]>(
          undefined,
          (after) =>
            page({ ...filter, size, ...(after === undefined ? {} : { after }) }).pipe(
              Effect.orDie,
              each,
              withSpan("TicketsRepo.page", { captureStackTrace: false })
            ),
          size,
          (last) => ({ concertId: ConcertId.make(last.concertId), seat: last.seat })
        )
    } as const
  })
}) {}
