import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Schema } from "effect"
import { ConcertId, TicketId, UserId } from "../domain/Ids.js"
import { TicketRecord } from "../domain/Ticket.js"

/** The select list that reads a `tickets` row as a `TicketRecord`. */
export const ticketColumns =
  `id, concert_id AS "concertId", user_id AS "userId", seat_no AS seat, print_status AS "printStatus"`

const Filter = Schema.Struct({
  userId: Schema.optionalWith(UserId, { exact: true }),
  concertId: Schema.optionalWith(ConcertId, { exact: true })
})

export class TicketsRepo extends Effect.Service<TicketsRepo>()("TicketsRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const select = sql.literal(ticketColumns)

    const findById = SqlSchema.findOne({
      Request: TicketId,
      Result: TicketRecord,
      execute: (id) => sql`SELECT ${select} FROM tickets WHERE id = ${id}`
    })

    const list = SqlSchema.findAll({
      Request: Filter,
      Result: TicketRecord,
      execute: ({ concertId, userId }) => {
        const where = sql.and([
          ...(concertId === undefined ? [] : [sql`concert_id = ${concertId}`]),
          ...(userId === undefined ? [] : [sql`user_id = ${userId}`])
        ])
        // Within a concert, seat order is purchase order (and the seat index serves it).
        return userId === undefined
          ? sql`SELECT ${select} FROM tickets WHERE ${where} ORDER BY concert_id, seat_no`
          : sql`SELECT ${select} FROM tickets WHERE ${where} ORDER BY created_at, concert_id, seat_no`
      }
    })

    return {
      findById: (id: TicketId) =>
        findById(id).pipe(Effect.orDie, Effect.withSpan("TicketsRepo.findById", { captureStackTrace: false, attributes: { id } })),
      list: (filter: typeof Filter.Type) =>
        list(filter).pipe(Effect.orDie, Effect.withSpan("TicketsRepo.list", { captureStackTrace: false }))
    } as const
  })
}) {}
