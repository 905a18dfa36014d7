import { SqlClient, SqlSchema } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Data, Effect, Option, Schema } from "effect"
import type { Ledger } from "../domain/Ledger.js"
import { Concert } from "../domain/Concert.js"
import { ConcertId, TicketId } from "../domain/Ids.js"
import { ReservationId, ReservationRecord, ReservationStatus } from "../domain/Reservation.js"
import { SaleMode } from "../domain/Sale.js"
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

/** A new HELD reservation and its seats. */
export interface HoldRow {
  readonly id: string
  readonly userId: string
  readonly seats: ReadonlyArray<number>
  readonly expiresAt: number
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
  maxPerReservation: Schema.Int,
  holdSeconds: Schema.Int,
  paymentSeconds: Schema.Int,
  mode: SaleMode,
  opensAt: Schema.NullOr(Schema.Number),
  next: Schema.Int,
  free: Schema.Array(Schema.Int)
})

/** The select list that reads a `reservations` row as a `ReservationRecord` (tickets apart). */
export const reservationColumns = `r.id, r.concert_id AS "concertId", r.user_id AS "userId", r.quantity, r.seats,
  r.status, (extract(epoch FROM r.expires_at) * 1000)::float8 AS "expiresAt", r.invoice_number AS "invoiceNumber"`

export const ReservationRow = Schema.Struct({
  id: ReservationId,
  concertId: ConcertId,
  userId: TicketRecord.fields.userId,
  quantity: Schema.Int,
  seats: Schema.Array(Schema.Int),
  status: ReservationStatus,
  expiresAt: Schema.NullOr(Schema.Number),
  invoiceNumber: Schema.NullOr(Schema.Int)
})

const KeyedReservationRow = Schema.Struct({ ...ReservationRow.fields, idempotencyKey: Schema.String })

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
                   c.max_per_reservation AS "maxPerReservation", c.hold_seconds AS "holdSeconds",
                   c.payment_seconds AS "paymentSeconds", c.sale_mode AS mode,
                   (extract(epoch FROM c.opens_at) * 1000)::float8 AS "opensAt", n.next, f.free
            FROM concerts c
            CROSS JOIN LATERAL (SELECT greatest(
              coalesce((SELECT max(seat_no) FROM tickets t WHERE t.concert_id = c.id), 0),
              coalesce((SELECT max(seat_no) FROM held_seats h WHERE h.concert_id = c.id), 0))::int AS next) n
            CROSS JOIN LATERAL (
              SELECT coalesce(array_agg(s ORDER BY s), '{}')::int[] AS free FROM generate_series(1, n.next) s
              WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.concert_id = c.id AND t.seat_no = s)
                AND NOT EXISTS (SELECT 1 FROM held_seats h WHERE h.concert_id = c.id AND h.seat_no = s)) f
            WHERE c.id = ${id}`
    })

    /** The reservations that hold seats now: the entity keeps them, and their expiries. */
    const liveReservations = SqlSchema.findAll({
      Request: ConcertId,
      Result: ReservationRow,
      execute: (id) =>
        sql`SELECT ${sql.literal(reservationColumns)} FROM reservations r
            WHERE r.concert_id = ${id} AND r.status IN ('HELD', 'AWAITING_PAYMENT')`
    })

    const findReservation = SqlSchema.findOne({
      Request: ReservationId,
      Result: ReservationRow,
      execute: (id) => sql`SELECT ${sql.literal(reservationColumns)} FROM reservations r WHERE r.id = ${id}`
    })

    const reservationTickets = SqlSchema.findAll({
      Request: ReservationId,
      Result: TicketRecord,
      execute: (id) => sql`SELECT ${sql.literal(ticketColumns)} FROM tickets WHERE reservation_id = ${id} ORDER BY seat_no`
    })

    const reservationsByKeys = SqlSchema.findAll({
      Request: Schema.Array(Schema.String),
      Result: KeyedReservationRow,
      execute: (keys) =>
        sql`SELECT ${sql.literal(reservationColumns)}, r.idempotency_key AS "idempotencyKey"
            FROM reservations r WHERE r.idempotency_key = ANY(${keys})`
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
     * One statement for the whole batch: the tickets, the new reservations and the seats they
     * hold, and the concert's status (SOLD_OUT when the batch took the last seat). `unnest`
     * keeps the statement text fixed whatever the batch size.
     */
    const append = (ledger: Ledger, rows: ReadonlyArray<JournalRow>, holds: ReadonlyArray<HoldRow>) => {
      const { capacity, id, status } = ledger.concert
      const heldSeats = holds.flatMap((hold) => hold.seats)
      const heldBy = holds.flatMap((hold) => hold.seats.map(() => hold.id))
      return sql`
        WITH inserted AS (
          INSERT INTO tickets (id, concert_id, capacity, seat_no, user_id, idempotency_key)
          SELECT t.id, ${id}, ${capacity}, t.seat_no, t.user_id, t.idempotency_key
          FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.seat)}::int[],
                      ${rows.map((r) => r.userId)}::text[], ${rows.map((r) => r.idempotencyKey ?? null)}::text[])
               AS t(id, seat_no, user_id, idempotency_key)
          RETURNING 1
        ), reserved AS (
          INSERT INTO reservations (id, concert_id, user_id, quantity, seats, status, expires_at, idempotency_key)
          SELECT r.id, ${id}, r.user_id, cardinality(r.seats::int[]), r.seats::int[], 'HELD',
                 to_timestamp(r.expires_at / 1000.0), r.idempotency_key
          FROM unnest(${holds.map((h) => h.id)}::uuid[], ${holds.map((h) => h.userId)}::text[],
                      ${holds.map((h) => `{${h.seats.join(",")}}`)}::text[], ${holds.map((h) => h.expiresAt)}::float8[],
                      ${holds.map((h) => h.idempotencyKey ?? null)}::text[])
               AS r(id, user_id, seats, expires_at, idempotency_key)
          RETURNING 1
        ), held AS (
          INSERT INTO held_seats (concert_id, capacity, seat_no, reservation_id)
          SELECT ${id}, ${capacity}, h.seat_no, h.reservation_id
          FROM unnest(${heldSeats}::int[], ${heldBy}::uuid[]) AS h(seat_no, reservation_id)
          RETURNING 1
        )
        UPDATE concerts SET status = ${status}, seat_changes = seat_changes + 1, updated_at = now()
        WHERE id = ${id}`
    }

    /** HELD → AWAITING_PAYMENT with an invoice number (lowest recycled, else the next new one). */
    const checkout = (reservationId: string, expiresAt: number) =>
      sql<{ readonly invoiceNumber: number }>`
        UPDATE reservations
        SET status = 'AWAITING_PAYMENT', invoice_number = take_invoice_number(organiser_id),
            expires_at = to_timestamp(${expiresAt} / 1000.0), updated_at = now()
        WHERE id = ${reservationId} AND status = 'HELD'
        RETURNING invoice_number AS "invoiceNumber"`

    /**
     * HELD or AWAITING_PAYMENT → CONFIRMED: a number if it has none, its held seats become
     * ordinary tickets, in one transaction.
     */
    const confirm = (ledger: Ledger, reservationId: string, userId: string, tickets: ReadonlyArray<JournalRow>) => {
      const { capacity, id, status } = ledger.concert
      return sql.withTransaction(Effect.gen(function*() {
        const [row] = yield* sql<{ readonly invoiceNumber: number }>`
          UPDATE reservations
          SET status = 'CONFIRMED', invoice_number = coalesce(invoice_number, take_invoice_number(organiser_id)),
              expires_at = NULL, updated_at = now()
          WHERE id = ${reservationId} AND status IN ('HELD', 'AWAITING_PAYMENT')
          RETURNING invoice_number AS "invoiceNumber"`
        if (row === undefined) return yield* Effect.fail(new JournalError({ kind: "Conflict", cause: "not live" }))
        yield* sql`DELETE FROM held_seats WHERE reservation_id = ${reservationId}`
        yield* sql`
          INSERT INTO tickets (id, concert_id, capacity, seat_no, user_id, reservation_id)
          SELECT t.id, ${id}, ${capacity}, t.seat_no, ${userId}, ${reservationId}
          FROM unnest(${tickets.map((t) => t.id)}::uuid[], ${tickets.map((t) => t.seat)}::int[]) AS t(id, seat_no)`
        yield* sql`UPDATE concerts SET status = ${status}, seat_changes = seat_changes + 1, updated_at = now() WHERE id = ${id}`
        return row.invoiceNumber
      }))
    }

    /**
     * Live reservations → CANCELLED or EXPIRED in one transaction: their seats free, their
     * invoice numbers back in the pool (lowest first, under the organiser's lock).
     */
    const release = (ledger: Ledger, reservationIds: ReadonlyArray<string>, to: "CANCELLED" | "EXPIRED") => {
      const { id, status } = ledger.concert
      return sql.withTransaction(Effect.all([
        sql`SELECT return_invoice_number(organiser_id, invoice_number) FROM reservations
            WHERE id = ANY(${reservationIds}::uuid[]) AND status = 'AWAITING_PAYMENT' ORDER BY invoice_number`,
        sql`UPDATE reservations SET status = ${to}, expires_at = NULL, invoice_number = NULL, updated_at = now()
            WHERE id = ANY(${reservationIds}::uuid[]) AND status IN ('HELD', 'AWAITING_PAYMENT')`,
        sql`DELETE FROM held_seats WHERE reservation_id = ANY(${reservationIds}::uuid[])`,
        sql`UPDATE concerts SET status = ${status}, seat_changes = seat_changes + 1, updated_at = now() WHERE id = ${id}`
      ], { discard: true }))
    }

    /** New sale settings. */
    const updateSale = (ledger: Ledger) => {
      const { holdSeconds, maxPerReservation, mode, opensAt, paymentSeconds } = ledger.sale
      return sql`
        UPDATE concerts
        SET max_per_reservation = ${maxPerReservation}, hold_seconds = ${holdSeconds},
            payment_seconds = ${paymentSeconds}, sale_mode = ${mode},
            opens_at = ${opensAt === null ? null : new Date(opensAt).toISOString()}::timestamptz, updated_at = now()
        WHERE id = ${ledger.concert.id}`
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

    const journaled = <A, E extends { readonly _tag: string }>(name: string, attributes: Record<string, unknown>) =>
    (effect: Effect.Effect<A, E>) =>
      effect.pipe(
        Effect.catchAll((e): Effect.Effect<never, JournalError> =>
          e instanceof JournalError
            ? Effect.fail(e)
            : e._tag === "SqlError"
            ? Effect.fail(classify(e as unknown as SqlError))
            : Effect.die(e)
        ),
        Effect.withSpan(`ConcertJournal.${name}`, { captureStackTrace: false, attributes })
      )

    return {
      /** A reservation as stored, with its tickets once CONFIRMED. */
      findReservation: (id: ReservationId): Effect.Effect<Option.Option<ReservationRecord>, JournalError> =>
        findReservation(id).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.succeed(Option.none()),
            onSome: (row) =>
              Effect.map(
                row.status === "CONFIRMED" ? reservationTickets(id) : Effect.succeed([]),
                (tickets) => Option.some(new ReservationRecord({ ...row, tickets }))
              )
          })),
          journaled("findReservation", { reservationId: id })
        ),
      liveReservations: (id: ConcertId) =>
        liveReservations(id).pipe(journaled("liveReservations", { concertId: id })),
      reservationsByKeys: (keys: ReadonlyArray<string>) =>
        reservationsByKeys(keys).pipe(journaled("reservationsByKeys", { keys: keys.length })),
      checkout: (reservationId: string, expiresAt: number) =>
        checkout(reservationId, expiresAt).pipe(
          Effect.flatMap((rows) =>
            rows[0] === undefined
              ? Effect.fail(new JournalError({ kind: "Conflict", cause: "not HELD" }))
              : Effect.succeed(rows[0].invoiceNumber)
          ),
          journaled("checkout", { reservationId })
        ),
      confirm: (ledger: Ledger, reservationId: string, userId: string, tickets: ReadonlyArray<JournalRow>) =>
        confirm(ledger, reservationId, userId, tickets).pipe(journaled("confirm", { reservationId })),
      release: (ledger: Ledger, reservationIds: ReadonlyArray<string>, to: "CANCELLED" | "EXPIRED") =>
        release(ledger, reservationIds, to).pipe(journaled("release", { count: reservationIds.length, to })),
      updateSale: (ledger: Ledger) => updateSale(ledger).pipe(Effect.asVoid, journaled("updateSale", {})),
      load: (id: ConcertId): Effect.Effect<Option.Option<Ledger>, JournalError> =>
        loadRow(id).pipe(
          Effect.map(Option.map(({ free, holdSeconds, maxPerReservation, mode, next, opensAt, paymentSeconds, version, ...concert }): Ledger => ({
            concert: new Concert(concert),
            version,
            sale: { holdSeconds, maxPerReservation, mode, opensAt, paymentSeconds },
            next,
            free
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
      append: (ledger: Ledger, rows: ReadonlyArray<JournalRow>, holds: ReadonlyArray<HoldRow> = []) =>
        append(ledger, rows, holds).pipe(
          Effect.asVoid,
          Effect.mapError(classify),
          Effect.withSpan("ConcertJournal.append", {
            captureStackTrace: false,
            attributes: { concertId: ledger.concert.id, rows: rows.length, holds: holds.length }
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
