import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Redacted } from "effect"
import Pg from "pg"

/**
 * The schema, one numbered step at a time. A step, once released, is never edited: change the
 * schema with a new step.
 */
const initialSchema = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE concerts (
      id uuid PRIMARY KEY,
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      name text NOT NULL,
      venue text NOT NULL,
      date text NOT NULL CHECK (date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
      capacity integer NOT NULL CHECK (capacity BETWEEN 1 AND 150000),
      status text NOT NULL CHECK (status IN ('ACTIVE', 'CANCELLED', 'SOLD_OUT')),
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (id, capacity)
    )`
  // The seat number and the copy of the capacity (held equal to the concert's by the foreign
  // key) let the database itself refuse an oversold seat, whichever process wrote it.
  yield* sql`
    CREATE TABLE tickets (
      id uuid PRIMARY KEY,
      concert_id uuid NOT NULL,
      capacity integer NOT NULL,
      seat_no integer NOT NULL,
      user_id text NOT NULL,
      print_status text NOT NULL DEFAULT 'NOT_PRINTED'
        CHECK (print_status IN ('NOT_PRINTED', 'PENDING', 'PRINTED', 'ERROR')),
      idempotency_key text,
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (concert_id, capacity) REFERENCES concerts (id, capacity),
      CHECK (seat_no BETWEEN 1 AND capacity),
      CONSTRAINT tickets_seat_unique UNIQUE (concert_id, seat_no)
    )`
  yield* sql`CREATE UNIQUE INDEX tickets_idempotency_key ON tickets (idempotency_key) WHERE idempotency_key IS NOT NULL`
  yield* sql`CREATE INDEX tickets_user ON tickets (user_id)`
})

/** Printed tickets and rendered seating plans, each stamped with the concert version it shows. */
const renders = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE ticket_prints (
      ticket_id uuid PRIMARY KEY REFERENCES tickets (id),
      concert_version integer NOT NULL,
      svg text NOT NULL,
      printed_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE seating_plans (
      concert_id uuid PRIMARY KEY REFERENCES concerts (id),
      concert_version integer NOT NULL,
      purchased integer NOT NULL,
      etag text NOT NULL,
      svg_gzip bytea NOT NULL,
      rendered_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX tickets_pending ON tickets (concert_id) WHERE print_status = 'PENDING'`
})

/**
 * Reservations (ONSALE.md §1-§3): each concert's sale settings, reservations and the seats they
 * hold, and per organiser one gap-free invoice sequence with its pool of recycled numbers.
 */
const reservations = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    ALTER TABLE concerts
      ADD COLUMN organiser_id text NOT NULL DEFAULT 'default',
      ADD COLUMN max_per_reservation integer NOT NULL DEFAULT 10 CHECK (max_per_reservation BETWEEN 1 AND 100),
      ADD COLUMN hold_seconds integer NOT NULL DEFAULT 600 CHECK (hold_seconds BETWEEN 1 AND 86400),
      ADD COLUMN payment_seconds integer NOT NULL DEFAULT 172800 CHECK (payment_seconds BETWEEN 1 AND 2592000),
      ADD COLUMN sale_mode text NOT NULL DEFAULT 'FIRST_COME' CHECK (sale_mode IN ('FIRST_COME', 'DRAW')),
      ADD COLUMN opens_at timestamptz,
      -- Bumped by every write that changes which seats are taken: the seating sweep's signal.
      ADD COLUMN seat_changes bigint NOT NULL DEFAULT 0`
  yield* sql`ALTER TABLE seating_plans ADD COLUMN seat_changes bigint NOT NULL DEFAULT -1`
  yield* sql`
    CREATE TABLE reservations (
      id uuid PRIMARY KEY,
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      organiser_id text NOT NULL DEFAULT 'default',
      concert_id uuid NOT NULL REFERENCES concerts (id),
      user_id text NOT NULL,
      quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
      seats integer[] NOT NULL,
      status text NOT NULL CHECK (status IN ('HELD', 'AWAITING_PAYMENT', 'CONFIRMED', 'EXPIRED', 'CANCELLED')),
      expires_at timestamptz,
      invoice_number integer,
      idempotency_key text UNIQUE,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((status IN ('HELD', 'AWAITING_PAYMENT')) = (expires_at IS NOT NULL)),
      CHECK ((status IN ('AWAITING_PAYMENT', 'CONFIRMED')) = (invoice_number IS NOT NULL)),
      CHECK (cardinality(seats) = quantity)
    )`
  yield* sql`ALTER TABLE tickets ADD COLUMN reservation_id uuid REFERENCES reservations (id)`
  yield* sql`CREATE UNIQUE INDEX reservations_invoice ON reservations (organiser_id, invoice_number) WHERE invoice_number IS NOT NULL`
  yield* sql`CREATE INDEX reservations_live ON reservations (concert_id) WHERE status IN ('HELD', 'AWAITING_PAYMENT')`
  yield* sql`CREATE INDEX reservations_concert ON reservations (concert_id, seq)`
  yield* sql`CREATE INDEX reservations_user ON reservations (user_id, seq)`
  // The seats live reservations hold, with the same capacity check as tickets. A seat is
  // either held or sold, never both: each table refuses a seat the other has.
  yield* sql`
    CREATE TABLE held_seats (
      concert_id uuid NOT NULL,
      capacity integer NOT NULL,
      seat_no integer NOT NULL,
      reservation_id uuid NOT NULL REFERENCES reservations (id),
      FOREIGN KEY (concert_id, capacity) REFERENCES concerts (id, capacity),
      CHECK (seat_no BETWEEN 1 AND capacity),
      PRIMARY KEY (concert_id, seat_no)
    )`
  yield* sql`
    CREATE FUNCTION seat_is_free() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_TABLE_NAME = 'tickets' AND EXISTS (
        SELECT 1 FROM held_seats WHERE concert_id = NEW.concert_id AND seat_no = NEW.seat_no
      ) OR TG_TABLE_NAME = 'held_seats' AND EXISTS (
        SELECT 1 FROM tickets WHERE concert_id = NEW.concert_id AND seat_no = NEW.seat_no
      ) THEN
        RAISE EXCEPTION 'seat % of concert % is taken', NEW.seat_no, NEW.concert_id USING ERRCODE = 'unique_violation';
      END IF;
      RETURN NEW;
    END $$`
  yield* sql`CREATE TRIGGER tickets_seat_free BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION seat_is_free()`
  yield* sql`CREATE TRIGGER held_seats_seat_free BEFORE INSERT ON held_seats FOR EACH ROW EXECUTE FUNCTION seat_is_free()`
  // Invoice numbers: every change to an organiser's sequence or pool happens under the lock of
  // its sequence row, and each statement below reads what was committed before that lock was
  // granted, so numbers are handed out and returned one at a time: never twice, never lost.
  yield* sql`
    CREATE TABLE invoice_sequences (
      organiser_id text PRIMARY KEY,
      last_number integer NOT NULL DEFAULT 0
    )`
  yield* sql`
    CREATE TABLE invoice_pool (
      organiser_id text NOT NULL REFERENCES invoice_sequences (organiser_id),
      number integer NOT NULL,
      PRIMARY KEY (organiser_id, number)
    )`
  yield* sql`
    CREATE FUNCTION take_invoice_number(organiser text) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE taken integer;
    BEGIN
      INSERT INTO invoice_sequences (organiser_id) VALUES (organiser) ON CONFLICT DO NOTHING;
      PERFORM 1 FROM invoice_sequences WHERE organiser_id = organiser FOR UPDATE;
      DELETE FROM invoice_pool
      WHERE organiser_id = organiser
        AND number = (SELECT min(number) FROM invoice_pool WHERE organiser_id = organiser)
      RETURNING number INTO taken;
      IF taken IS NULL THEN
        UPDATE invoice_sequences SET last_number = last_number + 1
        WHERE organiser_id = organiser RETURNING last_number INTO taken;
      END IF;
      RETURN taken;
    END $$`
  yield* sql`
    CREATE FUNCTION return_invoice_number(organiser text, returned integer) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM 1 FROM invoice_sequences WHERE organiser_id = organiser FOR UPDATE;
      INSERT INTO invoice_pool (organiser_id, number) VALUES (organiser, returned);
    END $$`
})

/**
 * Pre-registration, the verifiable draw and the waiting line (ONSALE.md §4). The seed is kept
 * here from the moment a concert switches to DRAW and shown only once the draw has run.
 */
const draw = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    ALTER TABLE concerts
      ADD COLUMN draw_seed bytea,
      ADD COLUMN draw_seed_sha256 text,
      ADD COLUMN drawn_at timestamptz`
  yield* sql`
    CREATE TABLE registrations (
      id uuid PRIMARY KEY,
      concert_id uuid NOT NULL REFERENCES concerts (id),
      user_id text NOT NULL,
      quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
      -- REGISTERED before the draw; a REGISTERED row of a drawn concert is in its line (WAITING):
      -- the draw writes the line, not 100,000 updates of this table.
      status text NOT NULL CHECK (status IN ('REGISTERED', 'OFFERED', 'WAITING', 'PURCHASED', 'EXPIRED', 'WITHDRAWN')),
      reservation_id uuid REFERENCES reservations (id),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((status = 'OFFERED') <= (reservation_id IS NOT NULL))
    )`
  yield* sql`CREATE UNIQUE INDEX registrations_live_user ON registrations (concert_id, user_id) WHERE status IN ('REGISTERED', 'OFFERED', 'WAITING')`
  yield* sql`CREATE INDEX registrations_reservation ON registrations (reservation_id) WHERE reservation_id IS NOT NULL`
  // Each concert's line: the draw's order (places 1..draw_count), then those who joined after,
  // in arrival order. Written in one INSERT by the draw, without foreign keys: every row's
  // registration and concert are the draw's own, and the per-row checks slowed that INSERT
  // (the draw's write took 1.19 s with them, 0.83 s without, one bench run each).
  yield* sql`
    CREATE TABLE registration_line (
      concert_id uuid NOT NULL,
      line_no bigint NOT NULL,
      registration_id uuid NOT NULL,
      PRIMARY KEY (concert_id, line_no)
    )`
  yield* sql`CREATE UNIQUE INDEX registration_line_registration ON registration_line (registration_id)`
  yield* sql`ALTER TABLE concerts ADD COLUMN draw_count integer`
})

/** A concert's registrations in the order they came, for its organiser's list, read page by page. */
const registrationsListed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX registrations_concert_created ON registrations (concert_id, created_at, id)`
})

/**
 * A seat is either held or sold, checked once per statement rather than once per row: the rows
 * a statement inserted (its transition table) against the other table, in one query. Each row
 * is looked up by the other table's key (`LATERAL … LIMIT 1`, a plan that cannot become a scan
 * of the other table): PL/pgSQL keeps a query's plan for its session, made for the size of the
 * first statement it checked, and a hash join planned for a large draw would then scan every
 * ticket for each later hold. The row triggers before it ran a PL/pgSQL expression for every
 * ticket, which cost the journal's append more than its inserts did. The check runs once the
 * statement's inserts are all done, so a statement that both sells and holds a seat is refused
 * as well.
 */
const seatsCheckedPerStatement = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`DROP TRIGGER tickets_seat_free ON tickets`
  yield* sql`DROP TRIGGER held_seats_seat_free ON held_seats`
  yield* sql`DROP FUNCTION seat_is_free()`
  // The rows a statement inserted (`inserted`) whose seat the other table has: the first refuses it.
  const refusingSeatsIn = (name: string, other: "tickets" | "held_seats") =>
    sql.unsafe(`
      CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE taken record;
      BEGIN
        SELECT n.concert_id, n.seat_no INTO taken FROM inserted n,
          LATERAL (SELECT 1 FROM ${other} o WHERE o.concert_id = n.concert_id AND o.seat_no = n.seat_no LIMIT 1) other
        LIMIT 1;
        IF FOUND THEN
          RAISE EXCEPTION 'seat % of concert % is taken', taken.seat_no, taken.concert_id USING ERRCODE = 'unique_violation';
        END IF;
        RETURN NULL;
      END $$`)
  yield* refusingSeatsIn("sold_seats_not_held", "held_seats")
  yield* refusingSeatsIn("held_seats_not_sold", "tickets")
  yield* sql`
    CREATE TRIGGER tickets_seats_free AFTER INSERT ON tickets
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION sold_seats_not_held()`
  yield* sql`
    CREATE TRIGGER held_seats_seats_free AFTER INSERT ON held_seats
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION held_seats_not_sold()`
})

/** Below 1,000,000 (the cluster's own advisory locks start there), and not `DatabaseClaim`'s. */
const schemaLock = 424_243

/**
 * `effect` with the database's schema to itself, for schema work that cannot run in one
 * transaction (the cluster's storages make their tables as they start, and a failed probe
 * would end a transaction): the lock `exclusively` takes, held by a connection of its own
 * rather than the pool's, which `effect` may need whole. Ending that connection releases it.
 */
export const withSchemaLock = <A, E, R>(url: Redacted.Redacted, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new Pg.Client({ connectionString: Redacted.value(url), application_name: "ticketoverflow" })
        client.on("error", () => {})
        try {
          await client.connect()
          await client.query("SELECT pg_advisory_lock($1)", [schemaLock])
          return client
        } catch (cause) {
          await client.end().catch(() => undefined)
          throw cause
        }
      },
      catch: (cause) =>
        new SqlError({ cause, message: "could not take the schema lock" })
    }),
    () => effect,
    (client) => Effect.promise(() => client.end().catch(() => undefined))
  )

/**
 * Runs a migrator with the database's schema to itself: in one transaction that first takes an
 * advisory lock and makes sure the migrator's table exists. Processes started together on a new
 * database would otherwise each find no such table and create it at once, and all but one fail
 * (`CREATE TABLE IF NOT EXISTS` is no guard against a create in flight). The steps then run
 * as they would alone; a process that waited finds them done.
 */
export const exclusively = <A, E, R>(table: string, migrator: Effect.Effect<A, E, R>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(
      Effect.zipRight(
        Effect.zipRight(
          sql`SELECT pg_advisory_xact_lock(${schemaLock})`,
          // The table `Migrator` makes when it finds none, made here while the lock is held.
          sql`
            CREATE TABLE IF NOT EXISTS ${sql(table)} (
              migration_id integer primary key,
              created_at timestamp with time zone not null default now(),
              name text not null
            )`
        ),
        migrator
      )
    ))

export const runMigrations = exclusively(
  "ticketoverflow_migrations",
  Migrator.make({})({
    loader: Migrator.fromRecord({
      "0001_initial_schema": initialSchema,
      "0002_renders": renders,
      "0003_reservations": reservations,
      "0004_draw": draw,
      "0005_registrations_listed": registrationsListed,
      "0006_seats_checked_per_statement": seatsCheckedPerStatement
    }),
    table: "ticketoverflow_migrations"
  })
)
