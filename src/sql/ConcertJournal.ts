import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import type { SqlError } from "@effect/sql/SqlError"
import { Data, Deferred, Effect, Exit, Fiber, FiberId, FiberSet, Option, Schema, type Tracer } from "effect"
import type { Ledger } from "../domain/Ledger.js"
import { CurrentOrganiser } from "../domain/Organiser.js"
import * as Metrics from "../Metrics.js"
import { positiveInteger } from "../Settings.js"
import { prepareStatement } from "./Prepared.js"
import { Background } from "./Organisers.js"
import { Concert } from "../domain/Concert.js"
import { ConcertId, TicketId } from "../domain/Ids.js"
import { ReservationId, ReservationRecord, ReservationStatus } from "../domain/Reservation.js"
import { RegistrationId, RegistrationRecord, RegistrationStatus } from "../domain/Registration.js"
import { SaleMode } from "../domain/Sale.js"
import { TicketRecord } from "../domain/Ticket.js"
import { ticketColumns } from "./TicketsRepo.js"
import { spanOf, withSpan } from "../Spans.js"

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

/** A concert's sale settings as a `Sale` (`c` is the concert row). */
export const SaleRow = Schema.Struct({
  maxPerReservation: Schema.Int,
  holdSeconds: Schema.Int,
  paymentSeconds: Schema.Int,
  mode: SaleMode,
  opensAt: Schema.NullOr(Schema.Number),
  commitment: Schema.NullOr(Schema.String),
  drawnAt: Schema.NullOr(Schema.Number)
})

export const saleColumns = `c.max_per_reservation AS "maxPerReservation", c.hold_seconds AS "holdSeconds",
  c.payment_seconds AS "paymentSeconds", c.sale_mode AS mode,
  (extract(epoch FROM c.opens_at) * 1000)::float8 AS "opensAt",
  c.draw_seed_sha256 AS commitment, (extract(epoch FROM c.drawn_at) * 1000)::float8 AS "drawnAt"`

const LedgerRow = Schema.Struct({
  id: ConcertId,
  name: Schema.String,
  venue: Schema.String,
  date: Schema.String,
  capacity: Schema.Int,
  status: Concert.fields.status,
  version: Schema.Int,
  ...SaleRow.fields,
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

/** A new HELD reservation offered to a registration. */
export interface Offer extends HoldRow {
  readonly registrationId: string
}

/**
 * The select list and tables that read a registration as a `RegistrationRecord`: a REGISTERED
 * row of a drawn concert is WAITING, at its place in the concert's line.
 */
export const registrationColumns = `g.id, g.concert_id AS "concertId", g.user_id AS "userId", g.quantity,
  CASE WHEN g.status = 'REGISTERED' AND c.drawn_at IS NOT NULL THEN 'WAITING' ELSE g.status END AS status,
  l.line_no::float8 AS "lineNo", g.reservation_id AS "reservationId"`

export const registrationTables = `registrations g JOIN concerts c ON c.id = g.concert_id
  LEFT JOIN registration_line l ON l.registration_id = g.id`

export const RegistrationRow = Schema.Struct({
  id: RegistrationId,
  concertId: ConcertId,
  userId: TicketRecord.fields.userId,
  quantity: Schema.Int,
  status: RegistrationStatus,
  lineNo: Schema.NullOr(Schema.Number),
  reservationId: Schema.NullOr(ReservationId)
})

const KeyedReservationRow = Schema.Struct({ ...ReservationRow.fields, idempotencyKey: Schema.String })

const KeyedRow = Schema.Struct({
  ...TicketRecord.fields,
  idempotencyKey: Schema.String
})

/** A concert's batch waiting for its database's writer (see `append`). */
interface Append {
  readonly ledger: Ledger
  readonly rows: ReadonlyArray<JournalRow>
  readonly holds: ReadonlyArray<HoldRow>
  readonly span: Tracer.AnySpan | undefined
  /**
   * Told how the batch's write ended: written, refused, or (given up while its statement was in
   * flight) interrupted once that statement's fiber has ended. A batch given up before it was
   * sent is told nothing here: `unsafeAppend`'s give-up tells it (`append`'s fiber was
   * interrupted, and waits for nothing).
   */
  readonly done: (exit: Exit.Exit<void, JournalError>) => void
  cancelled: boolean
}

/** What a batch given up is told: not written, unless its statement committed before the cancel reached it. */
const givenUp = Exit.interrupt(FiberId.none)

/**
 * Tells a batch how its write ended. What its callback does next (answers, the concert's next
 * batch) is its own: a throw there must not stop the writer, which every later batch of the
 * database waits on.
 */
const tell = (part: Append, exit: Exit.Exit<void, JournalError>) => {
  try {
    part.done(exit)
  } catch {
    // See above.
  }
}

interface Writer {
  queue: Array<Append>
  /** Statements being written (at most `writesInFlight`), each by a loop of its own. */
  readonly inFlight: Set<InFlight>
  loops: number
}

interface InFlight {
  readonly parts: ReadonlyArray<Append>
  readonly fiber: Fiber.RuntimeFiber<ReadonlyArray<Exit.Exit<void, JournalError>>>
}

export class ConcertJournal extends Effect.Service<ConcertJournal>()("ConcertJournal", {
  scoped: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const loadRow = SqlSchema.findOne({
      Request: ConcertId,
      Result: LedgerRow,
      execute: (id) =>
        sql`SELECT c.id, c.name, c.venue, c.date, c.capacity, c.status, c.version,
                   ${sql.literal(saleColumns)}, n.next, f.free
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
     * One statement for the batches of several concerts of this database: their tickets, new
     * reservations and the seats those hold, and each concert's status (SOLD_OUT when its batch
     * took the last seat). `unnest` keeps the statement text fixed whatever the sizes. A batch of
     * purchases alone leaves its concert row alone unless its status changes (the seating sweep
     * sees new tickets by their count); holds bump its count of seat changes.
     */
    const appendStatement = (parts: ReadonlyArray<Append>) => {
      const tickets = parts.flatMap((part) => part.rows.map((row) => ({ row, concert: part.ledger.concert })))
      const holds = parts.flatMap((part) => part.holds.map((hold) => ({ hold, concert: part.ledger.concert })))
      const seats = holds.flatMap(({ concert, hold }) => hold.seats.map((seat) => ({ seat, hold, concert })))
      return sql`
        WITH inserted AS (
          INSERT INTO tickets (id, concert_id, capacity, seat_no, user_id, idempotency_key)
          SELECT t.id, t.concert_id, t.capacity, t.seat_no, t.user_id, t.idempotency_key
          FROM unnest(${tickets.map((t) => t.row.id)}::uuid[], ${tickets.map((t) => t.concert.id)}::uuid[],
                      ${tickets.map((t) => t.concert.capacity)}::int[], ${tickets.map((t) => t.row.seat)}::int[],
                      ${tickets.map((t) => t.row.userId)}::text[], ${tickets.map((t) => t.row.idempotencyKey ?? null)}::text[])
               AS t(id, concert_id, capacity, seat_no, user_id, idempotency_key)
          RETURNING 1
        ), reserved AS (
          INSERT INTO reservations (id, concert_id, user_id, quantity, seats, status, expires_at, idempotency_key)
          SELECT r.id, r.concert_id, r.user_id, cardinality(r.seats::int[]), r.seats::int[], 'HELD',
                 to_timestamp(r.expires_at / 1000.0), r.idempotency_key
          FROM unnest(${holds.map((h) => h.hold.id)}::uuid[], ${holds.map((h) => h.concert.id)}::uuid[],
                      ${holds.map((h) => h.hold.userId)}::text[], ${holds.map((h) => `{${h.hold.seats.join(",")}}`)}::text[],
                      ${holds.map((h) => h.hold.expiresAt)}::float8[], ${holds.map((h) => h.hold.idempotencyKey ?? null)}::text[])
               AS r(id, concert_id, user_id, seats, expires_at, idempotency_key)
          RETURNING 1
        ), held AS (
          INSERT INTO held_seats (concert_id, capacity, seat_no, reservation_id)
          SELECT h.concert_id, h.capacity, h.seat_no, h.reservation_id
          FROM unnest(${seats.map((s) => s.concert.id)}::uuid[], ${seats.map((s) => s.concert.capacity)}::int[],
                      ${seats.map((s) => s.seat)}::int[], ${seats.map((s) => s.hold.id)}::uuid[])
               AS h(concert_id, capacity, seat_no, reservation_id)
          RETURNING 1
        )
        UPDATE concerts c SET status = u.status, seat_changes = c.seat_changes + u.changes, updated_at = now()
        FROM unnest(${parts.map((p) => p.ledger.concert.id)}::uuid[], ${parts.map((p) => p.ledger.concert.status)}::text[],
                    ${parts.map((p) => p.holds.length > 0 ? 1 : 0)}::int[]) AS u(id, status, changes)
        WHERE c.id = u.id AND (c.status <> u.status OR u.changes > 0)`
    }
    // Its text is the same whatever the batches: parsed once per connection, and planned once
    // its first five runs are past (PostgreSQL then keeps a generic plan).
    prepareStatement(appendStatement([]).compile()[0])
    const appendAll = (parts: ReadonlyArray<Append>) =>
      appendStatement(parts).pipe(
        Effect.asVoid,
        Effect.mapError(classify)
      )

    /**
     * Group commit across concerts. The concerts of one database (one organiser's) share a
     * writer with up to `JOURNAL_WRITES_IN_FLIGHT` statements in flight (2): the batches that
     * arrive while they are go together in the next. With room in flight a batch is sent at
     * once, so a quiet sale waits for nothing; under load the database is asked once for many
     * concerts, not once for each. (One in flight was as fast in one process, but behind the
     * hop between runners, where each answer waits for more, it cost a third of 3 runners'
     * purchases.)
     *
     * A concert's batch is its own all the same:
     * - a statement refused by a constraint (one concert's conflict) is tried again one batch at
     *   a time, so that each gets its own answer and only the conflicting one fails;
     * - a batch given up by its concert (its buyers' deadline) is taken out: before it is sent,
     *   simply; once sent, by cancelling the statement, after which the others are sent again
     *   (a statement that committed all the same is found by the concert when it reloads, and by
     *   the others as a conflict with their own rows, each then answered from the journal).
     */
    const writers = new Map<number, Writer>()
    const writesInFlight = yield* positiveInteger("JOURNAL_WRITES_IN_FLIGHT", 2)
    const newWriter = (organiser: number) => {
      const writer: Writer = { queue: [], loops: 0, inFlight: new Set() }
      writers.set(organiser, writer)
      return writer
    }

    const write = (parts: ReadonlyArray<Append>) =>
      appendAll(parts).pipe(
        Effect.as(parts.map((): Exit.Exit<void, JournalError> => Exit.void)),
        Effect.catchAll((error) =>
          parts.length === 1 || error.kind !== "Conflict"
            ? Effect.succeed(parts.map(() => Exit.fail(error)))
            : Effect.forEach(parts, (part) => Effect.exit(appendAll([part])), { concurrency: 4 })
        ),
        withSpan("ConcertJournal.write", {
          captureStackTrace: false,
          ...(parts[0]!.span === undefined ? {} : { parent: parts[0]!.span }),
          links: parts.slice(1).flatMap((part) => part.span === undefined ? [] : [{ _tag: "SpanLink" as const, span: part.span, attributes: {} }]),
          attributes: { concerts: parts.length, rows: parts.reduce((n, part) => n + part.rows.length, 0) }
        })
      )

    /** One writing loop: a statement for whatever is queued, until nothing is. */
    const drain = (organiser: number, writer: Writer): Effect.Effect<void> => {
      let entry: InFlight | undefined
      let more = true
      const step = Effect.suspend(() => {
        const parts = writer.queue.filter((part) => !part.cancelled)
        writer.queue = []
        if (parts.length === 0) {
          more = false
          writer.loops--
          return Effect.void
        }
        Metrics.writeConcerts.unsafeUpdate(parts.length, [])
        return write(parts).pipe(
          Effect.locally(CurrentOrganiser, organiser),
          Effect.locally(Background, false),
          Effect.fork,
          Effect.flatMap((fiber) => {
            entry = { parts, fiber }
            writer.inFlight.add(entry)
            // Given up while it was being sent (neither queued nor in flight then): cancelled now.
            if (parts.some((part) => part.cancelled)) fiber.unsafeInterruptAsFork(FiberId.none)
            return Fiber.await(fiber)
          }),
          Effect.map((exit) => {
            writer.inFlight.delete(entry!)
            entry = undefined
            if (Exit.isSuccess(exit)) exit.value.forEach((result, i) => tell(parts[i]!, result))
            else if (Exit.isInterrupted(exit)) {
              // Cancelled for a batch given up: that batch is told so, now that its statement
              // is settled; the others go again.
              writer.queue.unshift(...parts.filter((part) => !part.cancelled))
              for (const part of parts) if (part.cancelled) tell(part, givenUp)
            } else for (const part of parts) tell(part, exit as Exit.Exit<never, never>)
          })
        )
      })
      return Effect.whileLoop({ while: () => more, body: () => step, step: () => {} }).pipe(
        // The journal is closing: nothing more is written, and every waiting batch is told so.
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            const waiting = [...writer.queue, ...(entry?.parts ?? [])]
            writer.queue = []
            writer.loops--
            for (const part of waiting) tell(part, closing)
          })
        )
      )
    }

    const runFork = yield* FiberSet.makeRuntime<never>()
    const closing = Exit.fail(new JournalError({ kind: "Unavailable", cause: "the journal is closing" }))
    let closed = false
    // Runs before the writing loops are interrupted (finalizers run last added first): nothing
    // is queued after it, and what waits unsent is told so (a loop not started yet would not).
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const writer of writers.values()) {
          const waiting = writer.queue
          writer.queue = []
          for (const part of waiting) tell(part, closing)
        }
      })
    )

    /** A batch joins its database's writer; a writing loop starts if there is room for one. */
    const enqueue = (organiser: number, part: Append) => {
      const writer = writers.get(organiser) ?? newWriter(organiser)
      if (closed) {
        tell(part, closing)
        return writer
      }
      writer.queue.push(part)
      if (writer.loops < writesInFlight) {
        writer.loops++
        // Started after what runs now: the batches that arrive meanwhile go in its statement.
        runFork(Effect.interruptible(drain(organiser, writer)), { immediate: false })
      }
      return writer
    }

    /**
     * Gives `part` up: still queued, it is left out when the queue is taken; in flight, its
     * statement's fiber is the one to interrupt (the others go again); being sent (taken, not
     * in flight yet), the writer cancels the statement once it is.
     */
    const cancel = (writer: Writer, part: Append): "queued" | "sending" | Fiber.RuntimeFiber<unknown> => {
      part.cancelled = true
      for (const inFlight of writer.inFlight) if (inFlight.parts.includes(part)) return inFlight.fiber
      return writer.queue.includes(part) ? "queued" : "sending"
    }

    const append = (ledger: Ledger, rows: ReadonlyArray<JournalRow>, holds: ReadonlyArray<HoldRow>) =>
      Effect.withFiberRuntime<void, JournalError>((fiber) => {
        const organiser = fiber.getFiberRef(CurrentOrganiser)
        const span = spanOf(fiber)
        return Effect.uninterruptibleMask((restore) => {
          const done = Deferred.unsafeMake<void, JournalError>(FiberId.none)
          const part: Append = { ledger, rows, holds, span, done: (exit) => Deferred.unsafeDone(done, exit), cancelled: false }
          const writer = enqueue(organiser, part)
          return restore(Deferred.await(done)).pipe(
            Effect.onInterrupt(() =>
              Effect.suspend(() => {
                // In flight: the statement is cancelled, and its fiber waited for.
                const where = cancel(writer, part)
                return typeof where === "string" ? Effect.void : Fiber.interrupt(where)
              })
            )
          )
        })
      })

    /**
     * `append` without a fiber: `done` is told once how the write ended (an interruption when
     * given up in time, see the result). The result gives the batch up: taken out if not sent
     * yet (told at once), else its statement is cancelled (PostgreSQL asked to cancel it), and
     * `done` is told once the statement's fiber has ended. A statement that committed before
     * the cancel reached it is written all the same: told as written when its answer came
     * first, else as given up (the concert then finds it when it reloads).
     */
    const unsafeAppend = (
      organiser: number,
      ledger: Ledger,
      rows: ReadonlyArray<JournalRow>,
      done: (exit: Exit.Exit<void, JournalError>) => void
    ): (() => void) => {
      let told = false
      const part: Append = {
        ledger,
        rows,
        holds: [],
        span: undefined,
        done: (exit) => {
          if (told) return
          told = true
          done(exit)
        },
        cancelled: false
      }
      const writer = enqueue(organiser, part)
      return () => {
        if (told || part.cancelled) return
        const where = cancel(writer, part)
        if (where === "queued") tell(part, givenUp)
        else if (where !== "sending") where.unsafeInterruptAsFork(FiberId.none)
      }
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
        yield* sql`UPDATE registrations SET status = 'PURCHASED', updated_at = now()
                   WHERE reservation_id = ${reservationId} AND status = 'OFFERED'`
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
        // An offer that lapses is EXPIRED; one its holder cancels is WITHDRAWN.
        sql`UPDATE registrations SET status = ${to === "EXPIRED" ? "EXPIRED" : "WITHDRAWN"}, updated_at = now()
            WHERE reservation_id = ANY(${reservationIds}::uuid[]) AND status = 'OFFERED'`,
        sql`UPDATE concerts SET status = ${status}, seat_changes = seat_changes + 1, updated_at = now() WHERE id = ${id}`
      ], { discard: true }))
    }

    /** New sale settings; a new draw seed (kept secret until the draw) when one is given. */
    const updateSale = (ledger: Ledger, seed: Uint8Array | undefined) => {
      const { commitment, holdSeconds, maxPerReservation, mode, opensAt, paymentSeconds } = ledger.sale
      return sql`
        UPDATE concerts
        SET max_per_reservation = ${maxPerReservation}, hold_seconds = ${holdSeconds},
            payment_seconds = ${paymentSeconds}, sale_mode = ${mode},
            opens_at = ${opensAt === null ? null : new Date(opensAt).toISOString()}::timestamptz,
            draw_seed = ${seed === undefined ? sql`draw_seed` : sql`${Buffer.from(seed)}::bytea`},
            draw_seed_sha256 = ${commitment}, updated_at = now()
        WHERE id = ${ledger.concert.id}`
    }

    /** The live registrations (REGISTERED, OFFERED, WAITING): the entity keeps them. */
    const liveRegistrations = SqlSchema.findAll({
      Request: ConcertId,
      Result: RegistrationRow,
      execute: (id) =>
        sql`SELECT ${sql.literal(registrationColumns)} FROM ${sql.literal(registrationTables)}
            WHERE g.concert_id = ${id} AND g.status IN ('REGISTERED', 'OFFERED', 'WAITING')`
    })

    const findRegistration = SqlSchema.findOne({
      Request: RegistrationId,
      Result: RegistrationRow,
      execute: (id) => sql`SELECT ${sql.literal(registrationColumns)} FROM ${sql.literal(registrationTables)} WHERE g.id = ${id}`
    })

    /** New held reservations for registrations, and the registrations OFFERED them. */
    const insertOffers = (ledger: Ledger, offers: ReadonlyArray<Offer>) => {
      const { capacity, id } = ledger.concert
      return sql`
        WITH reserved AS (
          INSERT INTO reservations (id, concert_id, user_id, quantity, seats, status, expires_at)
          SELECT r.id, ${id}, r.user_id, cardinality(r.seats::int[]), r.seats::int[], 'HELD', to_timestamp(r.expires_at / 1000.0)
          FROM unnest(${offers.map((o) => o.id)}::uuid[], ${offers.map((o) => o.userId)}::text[],
                      ${offers.map((o) => `{${o.seats.join(",")}}`)}::text[], ${offers.map((o) => o.expiresAt)}::float8[])
               AS r(id, user_id, seats, expires_at)
          RETURNING 1
        ), held AS (
          INSERT INTO held_seats (concert_id, capacity, seat_no, reservation_id)
          SELECT ${id}, ${capacity}, h.seat_no, h.reservation_id
          FROM unnest(${offers.flatMap((o) => o.seats)}::int[], ${offers.flatMap((o) => o.seats.map(() => o.id))}::uuid[])
               AS h(seat_no, reservation_id)
          RETURNING 1
        )
        SELECT (SELECT count(*) FROM reserved) AS reserved, (SELECT count(*) FROM held) AS held`
    }

    /** Registrations OFFERED the reservations just inserted (a second statement: the FK must see them). */
    const markOffered = (offers: ReadonlyArray<Offer>) =>
      sql`UPDATE registrations g SET status = 'OFFERED', reservation_id = o.reservation_id, updated_at = now()
          FROM unnest(${offers.map((o) => o.registrationId)}::uuid[], ${offers.map((o) => o.id)}::uuid[])
               AS o(registration_id, reservation_id)
          WHERE g.id = o.registration_id`

    const concertSeats = (ledger: Ledger, drawnAt?: number) =>
      sql`UPDATE concerts SET status = ${ledger.concert.status}, seat_changes = seat_changes + 1,
            ${drawnAt === undefined ? sql`` : sql`drawn_at = to_timestamp(${drawnAt} / 1000.0),`} updated_at = now()
          WHERE id = ${ledger.concert.id}`

    /** Seats that came back offered to the line: one transaction. */
    const offer = (ledger: Ledger, offers: ReadonlyArray<Offer>) =>
      sql.withTransaction(Effect.all([insertOffers(ledger, offers), markOffered(offers), concertSeats(ledger)], { discard: true }))

    /**
     * The draw, in one transaction of a few statements whatever the number of registrations:
     * the offers' reservations and seats, the whole line in drawn order (one INSERT; a
     * REGISTERED registration of a drawn concert is WAITING at its place), the offers, and the
     * concert marked drawn (which reveals the seed).
     */
    const draw = (ledger: Ledger, offers: ReadonlyArray<Offer>, order: ReadonlyArray<string>, drawnAt: number) =>
      sql.withTransaction(Effect.all([
        insertOffers(ledger, offers),
        sql`INSERT INTO registration_line (concert_id, line_no, registration_id)
            SELECT ${ledger.concert.id}, o.line_no, o.id
            FROM unnest(${order}::uuid[]) WITH ORDINALITY AS o(id, line_no)`,
        markOffered(offers),
        sql`UPDATE concerts SET draw_count = ${order.length} WHERE id = ${ledger.concert.id}`,
        concertSeats(ledger, drawnAt)
      ], { discard: true }))

    /** New registrations: REGISTERED, or WAITING with their place at the back of the line. */
    const register = (concertId: string, rows: ReadonlyArray<RegistrationRecord>) => {
      const waiting = rows.filter((r) => r.status === "WAITING")
      return sql`
        WITH registered AS (
          INSERT INTO registrations (id, concert_id, user_id, quantity, status)
          SELECT r.id, ${concertId}, r.user_id, r.quantity, r.status
          FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.userId)}::text[],
                      ${rows.map((r) => r.quantity)}::int[], ${rows.map((r) => r.status)}::text[])
               AS r(id, user_id, quantity, status)
          RETURNING 1
        )
        INSERT INTO registration_line (concert_id, line_no, registration_id)
        SELECT ${concertId}, w.line_no, w.id
        FROM unnest(${waiting.map((r) => r.lineNo)}::bigint[], ${waiting.map((r) => r.id)}::uuid[]) AS w(line_no, id)`
    }

    /** A registration withdrawn by its holder (an offered one's reservation is released apart). */
    const withdraw = (registrationId: string) =>
      sql`UPDATE registrations SET status = 'WITHDRAWN', updated_at = now()
          WHERE id = ${registrationId} AND status IN ('REGISTERED', 'OFFERED', 'WAITING')`

    /** The last place ever given in a concert's line (places are never reused). */
    const lastLineNo = (concertId: string) =>
      sql<{ readonly last: number }>`
        SELECT coalesce(max(line_no), 0)::float8 AS last FROM registration_line WHERE concert_id = ${concertId}`

    const drawSeed = (concertId: string) =>
      sql<{ readonly seed: Uint8Array }>`SELECT draw_seed AS seed FROM concerts WHERE id = ${concertId}`

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
        withSpan(`ConcertJournal.${name}`, { captureStackTrace: false, attributes })
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
      updateSale: (ledger: Ledger, seed?: Uint8Array) => updateSale(ledger, seed).pipe(Effect.asVoid, journaled("updateSale", {})),
      liveRegistrations: (id: ConcertId) =>
        liveRegistrations(id).pipe(
          Effect.map((rows) => rows.map((row) => new RegistrationRecord(row))),
          journaled("liveRegistrations", { concertId: id })
        ),
      findRegistration: (id: RegistrationId) =>
        findRegistration(id).pipe(Effect.map(Option.map((row) => new RegistrationRecord(row))), journaled("findRegistration", {})),
      register: (concertId: string, rows: ReadonlyArray<RegistrationRecord>) =>
        rows.length === 0 ? Effect.void : register(concertId, rows).pipe(Effect.asVoid, journaled("register", { rows: rows.length })),
      offer: (ledger: Ledger, offers: ReadonlyArray<Offer>) => offer(ledger, offers).pipe(journaled("offer", { offers: offers.length })),
      draw: (ledger: Ledger, offers: ReadonlyArray<Offer>, order: ReadonlyArray<string>, drawnAt: number) =>
        draw(ledger, offers, order, drawnAt).pipe(journaled("draw", { offers: offers.length, registrations: order.length })),
      withdraw: (registrationId: string) => withdraw(registrationId).pipe(Effect.asVoid, journaled("withdraw", {})),
      lastLineNo: (concertId: string) =>
        lastLineNo(concertId).pipe(Effect.map((rows) => rows[0]?.last ?? 0), journaled("lastLineNo", {})),
      drawSeed: (concertId: string) =>
        drawSeed(concertId).pipe(
          Effect.flatMap((rows) =>
            rows[0]?.seed == null ? Effect.fail(new JournalError({ kind: "Conflict", cause: "no draw seed" })) : Effect.succeed(new Uint8Array(rows[0].seed))
          ),
          journaled("drawSeed", {})
        ),
      load: (id: ConcertId): Effect.Effect<Option.Option<Ledger>, JournalError> =>
        loadRow(id).pipe(
          Effect.map(Option.map(({ commitment, drawnAt, free, holdSeconds, maxPerReservation, mode, next, opensAt, paymentSeconds, version, ...concert }): Ledger => ({
            concert: new Concert(concert),
            version,
            sale: { holdSeconds, maxPerReservation, mode, opensAt, paymentSeconds, commitment, drawnAt },
            next,
            free
          }))),
          Effect.catchTags({ SqlError: (e) => Effect.fail(classify(e)), ParseError: Effect.die }),
          withSpan("ConcertJournal.load", { captureStackTrace: false, attributes: { concertId: id } })
        ),
      findByKeys: (keys: ReadonlyArray<string>) =>
        findByKeys(keys).pipe(
          Effect.catchTags({ SqlError: (e) => Effect.fail(classify(e)), ParseError: Effect.die }),
          withSpan("ConcertJournal.findByKeys", { captureStackTrace: false, attributes: { keys: keys.length } })
        ),
      findTicket: (id: TicketId) =>
        findTicket(id).pipe(
          Effect.catchTags({ SqlError: (e) => Effect.fail(classify(e)), ParseError: Effect.die }),
          withSpan("ConcertJournal.findTicket", { captureStackTrace: false })
        ),
      unsafeAppend,
      append: (ledger: Ledger, rows: ReadonlyArray<JournalRow>, holds: ReadonlyArray<HoldRow> = []) =>
        append(ledger, rows, holds).pipe(
          withSpan("ConcertJournal.append", {
            captureStackTrace: false,
            attributes: { concertId: ledger.concert.id, rows: rows.length, holds: holds.length }
          })
        ),
      update: (ledger: Ledger) =>
        update(ledger).pipe(
          Effect.asVoid,
          Effect.mapError(classify),
          withSpan("ConcertJournal.update", { captureStackTrace: false, attributes: { concertId: ledger.concert.id } })
        )
    } as const
  })
}) {}
