import { SqlClient, SqlSchema } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Data, Effect, Option, Schema } from "effect"
import type { Ledger } from "../domain/Ledger.js"
import { Concert } from "../domain/Concert.js"
import { ConcertId, TicketId } from "../domain/Ids.js"
import { TicketRecord } from "../domain/Ticket.js"
import { ticketColumns } from "./TicketsRepo.js"

/**
 * Why a journal write failed: `Conflict` when a constraint refused it (a ticket id or key
 * already used, a seat someone else journaled), `Unavailable` when the database could not be
 * asked. Nothing of a failed write is kept: each write is one statement or one transaction.
 */
export class JournalError extends Data.TaggedError("JournalError")<{
  readonly kind: "Conflict" | "Unavailable"
  readonly cause: unknown
}> {}

const classify = (error: SqlError): JournalError => {
  const code = (error.cause as { readonly code?: unknown } | undefined)?.code
  const conflict = typeof code === "string" && code.startsWith("23") // integrity constraint violation
  return new JournalError({ kind: conflict ? "Conflict" : "Unavailable", cause: error.cause ?? error })
}

export interface JournalRow {
  readonly id: string
  readonly seat: number
  readonly userId: string
  readonly idempotencyKey: string | undefined
}

const LedgerRow = Schema.Struct({
  id: ConcertId,
  name: Schema.String,
  venue: Schema.String,
  date: Schema.String,
  capacity: Schema.Int,
  status: Concert.fields.status,
  version: Schema.Int,
  sold: Schema.Int
})

const KeyedRow = Schema.Struct({
  ...TicketRecord.fields,
  idempotencyKey: Schema.String
})

export class ConcertJournal extends Effect.Service<ConcertJournal>()("ConcertJournal", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const loadRow = SqlSchema.findOne({
      Request: ConcertId,
      Result: LedgerRow,
      execute: (id) =>
        sql`SELECT c.id, c.name, c.venue, c.date, c.capacity, c.status, c.version,
                   coalesce((SELECT max(seat_no) FROM tickets t WHERE t.concert_id = c.id), 0)::int AS sold
            FROM concerts c WHERE c.id = ${id}`
    })

    const findByKeys = SqlSchema.findAll({
      Request: Schema.Array(Schema.String),
      Result: KeyedRow,
      execute: (keys) =>
        sql`SELECT ${sql.literal(ticketColumns)}, idempotency_key AS "idempotencyKey"
            FROM tickets WHERE idempotency_key = ANY(${keys})`
    })

    const findTicket = SqlSchema.findOne({
      Request: TicketId,
      Result: TicketRecord,
      execute: (id) => sql`SELECT ${sql.literal(ticketColumns)} FROM tickets WHERE id = ${id}`
    })

    /**
     * One statement for the whole batch: the tickets, and the SOLD_OUT status when the batch
     * took the last seat. `unnest` keeps the statement text fixed whatever the batch size.
     */
    const append = (ledger: Ledger, rows: ReadonlyArray<JournalRow>) => {
      const { capacity, id, status } = ledger.concert
      return sql`
        WITH inserted AS (
          INSERT INTO tickets (id, concert_id, capacity, seat_no, user_id, idempotency_key)
          SELECT t.id, ${id}, ${capacity}, t.seat_no, t.user_id, t.idempotency_key
          FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.seat)}::int[],
                      ${rows.map((r) => r.userId)}::text[], ${rows.map((r) => r.idempotencyKey ?? null)}::text[])
               AS t(id, seat_no, user_id, idempotency_key)
          RETURNING 1
        )
        UPDATE concerts SET status = ${status}, updated_at = now()
        WHERE id = ${id} AND status <> ${status}`
    }

    /**
     * The concert's new details and version, its printed tickets unprinted and their SVGs
     * dropped, at once. The concert row is updated first: its lock orders this against a
     * print being stored (which holds that row FOR SHARE while it checks the version).
     */
    const update = (ledger: Ledger) => {
      const { date, id, name, status, venue } = ledger.concert
      return sql.withTransaction(
        Effect.all([
          sql`UPDATE concerts
              SET name = ${name}, venue = ${venue}, date = ${date}, status = ${status},
                  version = ${ledger.version}, updated_at = now()
              WHERE id = ${id}`,
          sql`UPDATE tickets SET print_status = 'NOT_PRINTED'
              WHERE concert_id = ${id} AND print_status = 'PRINTED'`,
          sql`DELETE FROM ticket_prints p USING tickets t WHERE t.id = p.ticket_id AND t.concert_id = ${id}`
        ], { discard: true })
      )
    }

    return {
      load: (id: ConcertId): Effect.Effect<Option.Option<Ledger>, JournalError> =>
        loadRow(id).pipe(
          Effect.map(Option.map(({ sold, version, ...concert }): Ledger => ({
            concert: new Concert(concert),
            version,
            sold
          }))),
          Effect.catchTags({ SqlError: (e) => Effect.fail(classify(e)), ParseError: Effect.die }),
          Effect.withSpan("ConcertJournal.load", { captureStackTrace: false, attributes: { concertId: id } })
        ),
      findByKeys: (keys: ReadonlyArray<string>) =>
        findByKeys(keys).pipe(
          Effect.catchTags({ SqlError: (e) => Effect.fail(classify(e)), ParseError: Effect.die }),
          Effect.withSpan("ConcertJournal.findByKeys", { captureStackTrace: false, attributes: { keys: keys.length } })
        ),
      findTicket: (id: TicketId) =>
        findTicket(id).pipe(
          Effect.catchTags({ SqlError: (e) => Effect.fail(classify(e)), ParseError: Effect.die }),
          Effect.withSpan("ConcertJournal.findTicket", { captureStackTrace: false })
        ),
      append: (ledger: Ledger, rows: ReadonlyArray<JournalRow>) =>
        append(ledger, rows).pipe(
          Effect.asVoid,
          Effect.mapError(classify),
          Effect.withSpan("ConcertJournal.append", {
            captureStackTrace: false,
            attributes: { concertId: ledger.concert.id, rows: rows.length, sold: ledger.sold }
          })
        ),
      update: (ledger: Ledger) =>
        update(ledger).pipe(
          Effect.asVoid,
          Effect.mapError(classify),
          Effect.withSpan("ConcertJournal.update", { captureStackTrace: false, attributes: { concertId: ledger.concert.id } })
        )
    } as const
  })
}) {}
