/**
 * Reservations, sale settings and invoices as the API reads them. Every change to them is the
 * concert entity's (`ConcertJournal`); this only reads.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Effect, identity, Option, Schema, Stream } from "effect"
import { ConcertId, UserId } from "../domain/Ids.js"
import { Invoice, ReservationId, ReservationRecord } from "../domain/Reservation.js"
import { defaultSale, type Sale } from "../domain/Sale.js"
import { TicketRecord } from "../domain/Ticket.js"
import {
  registrationColumns,
  RegistrationRow,
  registrationTables,
  reservationColumns,
  ReservationRow,
  saleColumns,
  SaleRow
} from "./ConcertJournal.js"
import { DrawAudit, RegistrationId, RegistrationRecord } from "../domain/Registration.js"
import { keysetPages, type PageGate } from "./pages.js"
import { ticketColumns } from "./TicketsRepo.js"
import { withSpan } from "../Spans.js"


const PagedRow = Schema.Struct({ ...ReservationRow.fields, seq: Schema.String })

const InvoiceRow = Schema.Struct({
  number: Schema.Int,
  reservationId: Schema.NullOr(ReservationId),
  status: Invoice.fields.status
})

export class ReservationsRepo extends Effect.Service<ReservationsRepo>()("ReservationsRepo", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const findRow = SqlSchema.findOne({
      Request: ReservationId,
      Result: ReservationRow,
      execute: (id) => sql`SELECT ${sql.literal(reservationColumns)} FROM reservations r WHERE r.id = ${id}`
    })

    const ticketsOf = SqlSchema.findAll({
      Request: Schema.Array(ReservationId),
      Result: Schema.Struct({ ...TicketRecord.fields, reservationId: ReservationId }),
      execute: (ids) =>
        sql`SELECT ${sql.literal(ticketColumns)}, reservation_id AS "reservationId" FROM tickets
            WHERE reservation_id = ANY(${ids}::uuid[]) ORDER BY seat_no`
    })

    const sale = SqlSchema.findOne({
      Request: ConcertId,
      Result: SaleRow,
      execute: (id) =>
        sql`SELECT ${sql.literal(saleColumns)} FROM concerts c WHERE c.id = ${id}`
    })

    const page = SqlSchema.findAll({
      Request: Schema.Struct({
        after: Schema.String,
        size: Schema.Int,
        concertId: Schema.optional(ConcertId),
        userId: Schema.optional(Schema.String)
      }),
      Result: PagedRow,
      execute: ({ after, concertId, size, userId }) =>
        sql`SELECT r.seq::text AS seq, ${sql.literal(reservationColumns)} FROM reservations r
            WHERE ${
          sql.and([
            sql`r.seq > ${after}::bigint`,
            ...(concertId === undefined ? [] : [sql`r.concert_id = ${concertId}`]),
            ...(userId === undefined ? [] : [sql`r.user_id = ${userId}`])
          ])
        } ORDER BY r.seq LIMIT ${size}`
    })

    /** The records of some rows, with the tickets of the CONFIRMED ones. */
    const withTickets = (rows: ReadonlyArray<typeof ReservationRow.Type>) =>
      Effect.gen(function*() {
        const confirmed = rows.filter((row) => row.status === "CONFIRMED").map((row) => row.id)
        const tickets = confirmed.length === 0 ? [] : yield* ticketsOf(confirmed)
        return rows.map((row) =>
          new ReservationRecord({
            ...row,
            tickets: tickets.filter((t) => t.reservationId === row.id).map(({ reservationId: _, ...t }) => new TicketRecord(t))
          })
        )
      })

    const invoices = SqlSchema.findAll({
      Request: Schema.Struct({ organiserId: Schema.String, from: Schema.Int, to: Schema.Int }),
      Result: InvoiceRow,
      execute: ({ from, organiserId, to }) =>
        sql`SELECT invoice_number AS number, id AS "reservationId", status FROM reservations
            WHERE organiser_id = ${organiserId} AND invoice_number BETWEEN ${from} AND ${to}
            UNION ALL
            SELECT number, NULL, 'RECYCLED' FROM invoice_pool
            WHERE organiser_id = ${organiserId} AND number BETWEEN ${from} AND ${to}
            ORDER BY number`
    })

    const registration = SqlSchema.findOne({
      Request: RegistrationId,
      Result: Schema.Struct({ ...RegistrationRow.fields, position: Schema.NullOr(Schema.Int) }),
      execute: (id) =>
        sql`SELECT ${sql.literal(registrationColumns)},
                   CASE WHEN g.status = 'WAITING' OR g.status = 'REGISTERED' AND c.drawn_at IS NOT NULL THEN (
                     SELECT count(*)::int + 1 FROM registration_line w JOIN registrations x ON x.id = w.registration_id
                     WHERE w.concert_id = g.concert_id AND w.line_no < l.line_no AND x.status IN ('REGISTERED', 'WAITING'))
                   END AS position
            FROM ${sql.literal(registrationTables)} WHERE g.id = ${id}`
    })

    /** Registrations not in the line (before the draw, or withdrawn before it), oldest first. */
    const unlinedPage = SqlSchema.findAll({
      Request: Schema.Struct({ concertId: ConcertId, after: Schema.String, afterId: Schema.String, size: Schema.Int }),
      Result: Schema.Struct({ ...RegistrationRow.fields, at: Schema.String }),
      execute: ({ after, afterId, concertId, size }) =>
        sql`SELECT ${sql.literal(registrationColumns)},
                   to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
            FROM ${sql.literal(registrationTables)}
            WHERE g.concert_id = ${concertId} AND l.registration_id IS NULL
              AND (g.created_at, g.id) > (${after}::timestamptz, ${afterId}::uuid)
            ORDER BY g.created_at, g.id LIMIT ${size}`
    })

    /** The line, in its order. */
    const linePage = SqlSchema.findAll({
      Request: Schema.Struct({ concertId: ConcertId, after: Schema.Number, size: Schema.Int }),
      Result: RegistrationRow,
      execute: ({ after, concertId, size }) =>
        sql`SELECT ${sql.literal(registrationColumns)}
            FROM ${sql.literal(registrationTables)}
            WHERE l.concert_id = ${concertId} AND l.line_no > ${after}
            ORDER BY l.line_no LIMIT ${size}`
    })

    const drawRow = SqlSchema.findOne({
      Request: ConcertId,
      Result: Schema.Struct({
        commitment: Schema.NullOr(Schema.String),
        seed: Schema.NullOr(Schema.String),
        drawnAt: Schema.NullOr(Schema.String)
      }),
      execute: (id) =>
        sql`SELECT draw_seed_sha256 AS commitment,
                   CASE WHEN drawn_at IS NOT NULL THEN encode(draw_seed, 'hex') END AS seed,
                   to_char(drawn_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "drawnAt"
            FROM concerts WHERE id = ${id}`
    })

    /**
     * A drawn concert's line in drawn order, as one text: 100,000 ids read as rows, each decoded
     * and validated again in the audit, took half a second, while buyers waited to see the outcome.
     * PostgreSQL writes a uuid as the canonical lowercase text an id is.
     */
    const drawOrder = (id: ConcertId) =>
      Effect.map(
        sql<{ line: string | null }>`
          SELECT string_agg(registration_id::text, ',' ORDER BY line_no) AS line FROM registration_line
          WHERE concert_id = ${id} AND line_no <= (SELECT draw_count FROM concerts WHERE id = ${id})`,
        ([row]) => (row?.line == null ? [] : row.line.split(",").map((text) => RegistrationId.make(text, { disableValidation: true })))
      )

    const span = (name: string) => withSpan(`ReservationsRepo.${name}`, { captureStackTrace: false })
    return {
      findById: (id: ReservationId): Effect.Effect<Option.Option<ReservationRecord>> =>
        findRow(id).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.succeed(Option.none()),
            onSome: (row) => Effect.map(withTickets([row]), (records) => Option.some(records[0]!))
          })),
          Effect.orDie,
          span("findById")
        ),
      sale: (id: ConcertId): Effect.Effect<Option.Option<Sale>> => sale(id).pipe(Effect.orDie, span("sale")),
      /** The concert's `max_per_reservation` (the default's for a concert not found). */
      maxPerReservation: (id: ConcertId): Effect.Effect<number> =>
        sale(id).pipe(
          Effect.map(Option.match({ onNone: () => defaultSale.maxPerReservation, onSome: (s) => s.maxPerReservation })),
          Effect.orDie,
          span("maxPerReservation")
        ),
      /** Every reservation matching the filter, in creation order, page by page. */
      list: (filter: { readonly concertId?: ConcertId; readonly userId?: UserId }, size: number, each: PageGate = identity) =>
        keysetPages(
          "0",
          (after: string) =>
            page({ after, size, ...filter }).pipe(
              Effect.flatMap((rows) =>
                Effect.map(withTickets(rows), (records) => records.map((record, i) => ({ record, seq: rows[i]!.seq })))
              ),
              Effect.orDie,
              each,
              span("page")
            ),
          size,
          (last) => last.seq
        ),
      /** A registration, with its place in line while WAITING. */
      registration: (id: RegistrationId) =>
        registration(id).pipe(
          Effect.map(Option.map(({ position, ...row }) => new RegistrationRecord(row).toRegistration(position))),
          Effect.orDie,
          span("registration")
        ),
      /**
       * A concert's registrations, page by page, for its organiser: those not in the line first
       * (before the draw, in the order they came), then the line in its order, each WAITING one
       * with its position (counted as the pages are read: one pass, however long the line).
       */
      registrations: (concertId: ConcertId, size: number, each: PageGate = identity) =>
        Effect.gen(function*() {
          const unlined = yield* keysetPages(
            { at: "-infinity", id: "00000000-0000-0000-0000-000000000000" },
            ({ at, id }) => unlinedPage({ concertId, after: at, afterId: id, size }).pipe(Effect.orDie, each, span("registrations")),
            size,
            (last) => ({ at: last.at, id: last.id })
          )
          let ahead = 0
          const lined = yield* keysetPages(
            0,
            (after: number) => linePage({ concertId, after, size }).pipe(Effect.orDie, each, span("registrations")),
            size,
            (last) => last.lineNo ?? 0
          )
          return Stream.concat(
            Stream.map(unlined, (rows) => rows.map(({ at: _at, ...row }) => new RegistrationRecord(row).toRegistration(null))),
            Stream.map(lined, (rows) =>
              rows.map((row) => new RegistrationRecord(row).toRegistration(row.status === "WAITING" ? ++ahead : null)))
          )
        }),
      /** The draw's audit (none for a concert that never sold by draw). */
      draw: (id: ConcertId): Effect.Effect<Option.Option<DrawAudit>> =>
        Effect.gen(function*() {
          const row = yield* drawRow(id)
          if (Option.isNone(row) || row.value.commitment === null) return Option.none()
          const { commitment, drawnAt, seed } = row.value
          const order = drawnAt === null ? null : yield* drawOrder(id)
          return Option.some(new DrawAudit({ seed_sha256: commitment, seed, drawn_at: drawnAt, order }, { disableValidation: true }))
        }).pipe(Effect.orDie, span("draw")),
      invoices: (organiserId: string, from: number, to: number) =>
        invoices({ organiserId, from, to }).pipe(Effect.orDie, span("invoices"))
    } as const
  })
}) {}
